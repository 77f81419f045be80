"""Rewrite the statements of SQL text as it streams, and nothing else.

A rewrite sees one statement at a time (``Statement``: its text and which parts of it
are literals, bodies and comments) and answers its new text, or None to leave it. Gaps,
comments, psql meta-commands and COPY data pass through byte for byte, and so does every
statement no rewrite changes. A rewritten statement keeps its number of lines (shorter
text is followed by the newlines it lost), so psql's line numbers in errors still point
into the original file."""

from __future__ import annotations

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
