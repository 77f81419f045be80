"""Rewrite the statements of SQL text as it streams, and nothing else.

A rewrite sees one statement at a time (``Statement``: its text and which parts of it
are literals, bodies and comments) and answers its new text, or None to leave it. Gaps,
comments, psql meta-commands and COPY data pass through byte for byte, and so does every
statement no rewrite changes. A rewritten statement keeps its number of lines (shorter
text is followed by the newlines it lost), so psql's line numbers in errors still point
into the original file."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from restorebox.sql.lexer import COPY, INSERTS, STATEMENT, Statement, units

Rewrite = Callable[[Statement], "str | None"]
FLUSH = 1 << 20  # output is handed on in pieces of about this size


def rewritten(chunks: Iterable[bytes], rewrites: Sequence[Rewrite]) -> Iterator[bytes]:
    """``chunks`` of SQL text with every statement passed through ``rewrites`` in turn
    (each sees what the one before made of it)."""
    if not rewrites:
        yield from chunks
        return
    out = bytearray()
    for unit in units(chunks):
        if unit.kind == INSERTS:  # only INSERTs, which no rewrite is for
            out += unit.data
        elif unit.kind == COPY:
            if out:
                yield bytes(out)
                out.clear()
            yield unit.data
            continue
        elif unit.kind == STATEMENT:
            out += rewrite_statement(Statement(unit), rewrites)
        else:
            out += unit.data
        if len(out) >= FLUSH:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


def rewrite_statement(statement: Statement, rewrites: Sequence[Rewrite]) -> bytes:
    """One statement through ``rewrites``: its own bytes when none changes it. What a
    rewrite makes (perhaps several statements, or none) goes through the ones after it."""
    for index, rewrite in enumerate(rewrites):
        text = rewrite(statement)
        if text is None:
            continue
        new = _keep_lines(statement.data, text.encode("latin-1"))
        after = rewrites[index + 1 :]
        return b"".join(
            rewrite_statement(Statement(unit), after) if unit.kind == STATEMENT else unit.data
            for unit in units([new])
        )
    return statement.data


def _keep_lines(old: bytes, new: bytes) -> bytes:
    missing = old.count(b"\n") - new.count(b"\n")
    return new + b"\n" * missing if missing > 0 else new


def skipped(statement: Statement, why: str) -> str:
    """A statement made a comment that says why (its lines kept, see ``rewritten``)."""
    head = " ".join(statement.code.split())[:120]
    # A block comment: the rest of the statement's last line is still read as SQL.
    summary = head.replace("*/", "* /").replace("/*", "/ *").replace("\x1a", "")
    return f"/* restorebox: {why}: {summary} */"


# Building rewrites: patterns over a statement's code, from its first word.
IF_EXISTS = r"\s+IF EXISTS\b"
IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)'
QNAME = rf"{IDENT}(?:\s*\.\s*{IDENT})?"


class Head:
    """A pattern over a statement's code, from its first word, words apart by any space.
    A statement whose first word is none the pattern starts with is passed over without
    building its code (an --inserts dump is millions of INSERTs that no rule is for)."""

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern.replace(" ", r"\s+"), re.IGNORECASE | re.DOTALL)
        lead = re.match(r"(?:\(\?P<\w+>|\(\?:)?([A-Z|]+)", pattern)
        assert lead is not None, pattern
        self.words = frozenset(w.encode() for w in lead.group(1).split("|") if w)

    def match(self, statement: Statement) -> re.Match[str] | None:
        if statement.first_word not in self.words:
            return None
        return self.regex.match(statement.code)


def head(pattern: str) -> Head:
    return Head(pattern)


def skip_when(pattern: str, why: str) -> Rewrite:
    """A rewrite that makes every statement matching ``pattern`` a comment."""
    compiled = head(pattern)

    def rewrite(statement: Statement) -> str | None:
        return skipped(statement, why) if compiled.match(statement) else None

    return rewrite


def insert_after(pattern: str, words: str, unless: str | None = None) -> Rewrite:
    """A rewrite that puts ``words`` after what ``pattern`` matched (group ``at``, or the
    whole match), unless the statement's code matches ``unless`` there."""
    compiled = head(pattern)
    guard = re.compile(unless.replace(" ", r"\s+"), re.IGNORECASE) if unless else None

    def rewrite(statement: Statement) -> str | None:
        match = compiled.match(statement)
        if match is None:
            return None
        at = match.end("at") if "at" in compiled.regex.groupindex else match.end()
        if guard is not None and guard.match(statement.code, at):
            return None
        text = statement.text
        return f"{text[:at]}{words}{text[at:]}"

    return rewrite


def chain(*rewrites: Rewrite) -> Rewrite:
    """The first of ``rewrites`` that changes a statement."""

    def rewrite(statement: Statement) -> str | None:
        for each in rewrites:
            if (text := each(statement)) is not None:
                return text
        return None

    return rewrite
