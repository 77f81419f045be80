"""The one lexer for SQL text as pg_dump and psql write and read it.

A dump is cut into units, byte for byte (joined again they are the input):

- ``GAP``: white space and comments between statements;
- ``STATEMENT``: one SQL statement up to and including its ``;`` (or the end of input);
- ``META``: a psql meta-command line (``\\connect``, ``\\restrict``, ...), newline included;
- ``COPY``: data rows after a ``COPY ... FROM stdin`` statement, streamed in pieces; the
  last piece of a block ends with its ``\\.`` line;
- ``INSERTS``: a run of consecutive INSERT statements holding only plain text, standard
  strings and quoted names, with the newlines between them: what ``pg_dump --inserts``
  writes millions of, found in one match instead of one by one (``inserts_in`` splits
  one into its statements).

A ``;`` ends a statement only where psql's own lexer ends one: outside quoted strings
(standard-conforming or not, ``E''``), quoted identifiers, dollar quotes of any tag,
nested block comments, line comments and parentheses, and outside the ``BEGIN ... END``
of a SQL-standard function body. Input is read in chunks: memory holds one statement at a
time (COPY data never whole), so a dump of any size streams through.

Bytes are never decoded here: every encoding pg_dump writes keeps ASCII bytes for the SQL
syntax (the client-only encodings SJIS, BIG5, GBK, UHC and GB18030 may hide a backslash or
a quote in a character's second byte: they are refused before they get here, see
``backups/encodings``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

Kind = Literal["gap", "statement", "meta", "copy", "inserts"]
GAP: Final = "gap"
STATEMENT: Final = "statement"
META: Final = "meta"
COPY: Final = "copy"
INSERTS: Final = "inserts"

# Where a span of a statement is not code: its text is kept, its meaning is not SQL.
SpanKind = Literal["string", "dollar", "comment", "ident"]
Spans = list[tuple[int, int, SpanKind]]

_IDENT_BYTE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$") | {
    *range(0x80, 0x100)
}
_GAP = re.compile(rb"[ \t\r\n\f\v]+")
_SPECIAL = re.compile(rb"[;'\"$()\-/]")
_SPECIAL_WORDS = re.compile(rb"[;'\"$()\-/]|[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*")
_DOLLAR_TAG = re.compile(rb"\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$")
_ESCAPE_MARK = re.compile(rb"['\\]")
_DOLLAR_OPEN = re.compile(rb"\$[A-Za-z0-9_\x80-\xff]*")
_COMMENT_MARK = re.compile(rb"/\*|\*/")
# Most statements hold only plain text, standard strings and quoted names: one match, in
# C, finds where they end (the paren count is checked after); the rest take the long way.
_SIMPLE_BODY = rb"(?:[^;'\"$\-/Ee]++|[Ee](?!')|-(?!-)|/(?!\*)|'[^']*+'|\"[^\"]*+\")*+;"
_SIMPLE = re.compile(_SIMPLE_BODY)
_ONE_INSERT = re.compile(rb"INSERT\s" + _SIMPLE_BODY)
_INSERT_RUN = re.compile(rb"(?:INSERT\s" + _SIMPLE_BODY + rb"(?:[ \t\r]*\n)*)++")
_SIMPLE_LITERAL = re.compile(rb"('[^']*+')|(\"[^\"]*+\")")
# A statement that may hold a SQL-standard body (BEGIN ATOMIC ... END), as psql tells.
_ROUTINE = re.compile(rb"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b", re.I)
_COPY_FROM_STDIN = re.compile(rb"COPY\s.*\sFROM\s+stdin\b", re.I | re.S)
_SCS = re.compile(rb"SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?", re.I)
_COPY_PIECE = 4 << 20  # COPY data is handed on in pieces of about this size


class Unit(NamedTuple):
    kind: Kind
    data: bytes
    line: int  # the line of the input it starts on (1-based)
    # Statements: where their text is not code (offsets into ``data``), see Statement;
    # None for a simple statement (only standard strings and quoted names: found again).
    spans: Spans | None = None
    # COPY: the last piece of its block (it ends with the "\." line, or the input ended).
    last: bool = False


class _Input:
    """The unread input: a growing buffer over the chunks, trimmed as units leave."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buf = bytearray()
        self.eof = False

    def more(self) -> bool:
        """Read one more chunk; False at the end of the input."""
        if self.eof:
            return False
        for chunk in self.chunks:
            if chunk:
                self.buf += chunk
                return True
        self.eof = True
        return False

    def take(self, end: int) -> bytes:
        data = bytes(self.buf[:end])
        del self.buf[:end]
        return data


@dataclass
class _State:
    standard_strings: bool = True
    line: int = 1
    spans: Spans | None = field(default_factory=list)


def units(chunks: Iterable[bytes]) -> Iterator[Unit]:
    """Cut SQL text, given as chunks of bytes, into units (see the module's docstring)."""
    source = _Input(chunks)
    state = _State()
    while True:
        end = _gap_end(source)
        if end:
            yield _unit(source, state, GAP, end)
        if not source.buf and not source.more():
            return
        if source.buf[0] == 0x5C:  # "\": a meta-command, to the end of its line
            yield _unit(source, state, META, _line_end(source, 0))
            continue
        if source.buf[:7] == b"INSERT " and state.standard_strings:
            # Within one run a ";" psql would hold inside parentheses ends a statement
            # here: never in a dump psql can load, and the bytes pass as they are.
            run = _INSERT_RUN.match(source.buf)
            if run is not None:
                yield _unit(source, state, INSERTS, run.end())
                continue
        end, state.spans = _statement_end(source, state.standard_strings)
        statement = _unit(source, state, STATEMENT, end)
        head = statement.data[:200]
        copying = head[:4].upper() == b"COPY" and _is_copy_from_stdin(statement)
        if copying:
            # The rest of the COPY's line goes with it: its data begins on the next line.
            rest = source.take(_line_end(source, 0))
            state.line += rest.count(b"\n")
            statement = Unit(STATEMENT, statement.data + rest, statement.line, statement.spans)
        elif head[:3].upper() == b"SET" and (match := _SCS.match(head)) is not None:
            state.standard_strings = match.group(1).lower() == b"on"
        yield statement
        if copying:
            yield from _copy_data(source, state)


def _unit(source: _Input, state: _State, kind: Kind, end: int) -> Unit:
    data = source.take(end)
    unit = Unit(kind, data, state.line, state.spans if kind == STATEMENT else [])
    state.line += data.count(b"\n")
    return unit


def _is_copy_from_stdin(statement: Unit) -> bool:
    code = Statement(statement).code[:4096].encode("latin-1")
    return _COPY_FROM_STDIN.match(code) is not None


def _line_end(source: _Input, start: int) -> int:
    """The offset just past the newline that ends the line holding ``start``."""
    while True:
        found = source.buf.find(b"\n", start)
        if found >= 0:
            return found + 1
        start = max(start, len(source.buf))
        if not source.more():
            return len(source.buf)


def _gap_end(source: _Input) -> int:
    """How many bytes of white space and comments the input starts with."""
    pos = 0
    while True:
        while len(source.buf) - pos < 2 and source.more():
            pass
        if pos >= len(source.buf):
            return pos
        match = _GAP.match(source.buf, pos)
        if match:
            pos = match.end()
            continue
        pair = source.buf[pos : pos + 2]
        if pair == b"--":
            pos = _line_end(source, pos)
        elif pair == b"/*":
            pos = _block_comment_end(source, pos)
        else:
            return pos


def _block_comment_end(source: _Input, start: int) -> int:
    """The offset past the ``*/`` closing the (nested) block comment at ``start``."""
    depth = 0
    pos = start
    while True:
        mark = _COMMENT_MARK.search(source.buf, pos)
        if mark is None:
            pos = max(pos, len(source.buf) - 1)  # a mark may be cut between two chunks
            if not source.more():
                return len(source.buf)
            continue
        depth += 1 if mark.group() == b"/*" else -1
        pos = mark.end()
        if depth == 0:
            return pos


def _statement_end(source: _Input, standard: bool) -> tuple[int, Spans | None]:
    """The offset past the ``;`` that ends the statement at the start of the input, and
    the spans of its text that are not code."""
    spans: Spans = []
    while len(source.buf) < 64 and source.more():
        pass
    # psql counts BEGIN ... END (and CASE ... END within) only in CREATE FUNCTION and
    # CREATE PROCEDURE: the words are looked at only there.
    routine = _ROUTINE.match(source.buf) is not None
    if standard and not routine and (simple := _simple_statement(source.buf)) is not None:
        return simple
    special = _SPECIAL_WORDS if routine else _SPECIAL
    begin_depth = 0
    parens = 0
    pos = 0
    while True:
        match = special.search(source.buf, pos)
        if match is None:
            pos = len(source.buf)
            if not source.more():
                return pos, spans
            continue
        at = match.start()
        byte = source.buf[at]
        if byte == 0x3B:  # ;
            if parens <= 0 and begin_depth == 0:
                return at + 1, spans
            pos = at + 1
        elif byte == 0x28:  # (
            parens += 1
            pos = at + 1
        elif byte == 0x29:  # )
            parens -= 1
            pos = at + 1
        elif byte == 0x27:  # '
            pos = _string_end(source, at, standard)
            spans.append((at, pos, "string"))
        elif byte == 0x22:  # "
            pos = _quoted_end(source, at, 0x22)
            spans.append((at, pos, "ident"))
        elif byte == 0x24:  # $
            if at > 0 and source.buf[at - 1] in _IDENT_BYTE:
                pos = at + 1  # inside an identifier (a$b)
                continue
            pos, is_quote = _dollar_end(source, at)
            if is_quote:
                spans.append((at, pos, "dollar"))
        elif byte in (0x2D, 0x2F):  # - /
            if at + 1 >= len(source.buf) and source.more():
                pos = at  # the next byte decides
                continue
            pair = source.buf[at : at + 2]
            if pair == b"--":
                pos = _line_end(source, at)
                spans.append((at, pos, "comment"))
            elif pair == b"/*":
                pos = _block_comment_end(source, at)
                spans.append((at, pos, "comment"))
            else:
                pos = at + 1
        else:  # a word of a routine's statement
            pos = match.end()
            if pos == len(source.buf) and source.more():
                pos = at  # the word may go on in the next chunk
                continue
            word = match.group().lower()
            if word == b"begin" or (word == b"case" and begin_depth):
                begin_depth += 1
            elif word == b"end" and begin_depth:
                begin_depth -= 1


def _simple_statement(buf: bytearray) -> tuple[int, None] | None:
    match = _SIMPLE.match(buf)
    if match is None or match.end() == len(buf):  # at the end, "''" may go on past it
        return None
    body = match.group()
    bare = _SIMPLE_LITERAL.sub(b"", body)
    if bare.count(b"(") != bare.count(b")"):
        return None  # a ";" inside parentheses (CREATE RULE ... (a; b)): the long way
    return match.end(), None  # its literals are found again only if they are asked for


def _string_end(source: _Input, start: int, standard: bool) -> int:
    """The offset past the quote closing the string literal that opens at ``start``."""
    before = source.buf[start - 1] if start > 0 else 0
    escapes = not standard or (
        before in b"Ee" and (start < 2 or source.buf[start - 2] not in _IDENT_BYTE)
    )
    if not escapes:
        return _quoted_end(source, start, 0x27)
    pos = start + 1
    while True:
        match = _ESCAPE_MARK.search(source.buf, pos)
        if match is None or match.start() + 1 == len(source.buf):
            # Not closed yet, or the next byte decides ("\\" or "''" cut by a chunk).
            pos = match.start() if match is not None else len(source.buf)
            if source.more():
                continue
            if match is None:
                return min(pos, len(source.buf))
        at = match.start()
        if source.buf[at] == 0x5C or source.buf[at + 1 : at + 2] == b"'":
            pos = at + 2  # a backslash and what it escapes, or a doubled quote
        else:
            return at + 1


def _quoted_end(source: _Input, start: int, quote: int) -> int:
    """Past the closing quote of a literal where a doubled quote stands for itself."""
    pos = start + 1
    while True:
        found = source.buf.find(quote, pos)
        if found < 0:
            pos = len(source.buf)
            if not source.more():
                return pos
            continue
        if found + 1 == len(source.buf) and source.more():
            pos = found  # a doubled quote may be cut between two chunks
            continue
        if found + 1 < len(source.buf) and source.buf[found + 1] == quote:
            pos = found + 2
            continue
        return found + 1


def _dollar_end(source: _Input, start: int) -> tuple[int, bool]:
    """Past the closing tag of the dollar quote at ``start``, and whether it is one."""
    while True:
        match = _DOLLAR_TAG.match(source.buf, start)
        tail = source.buf[start : start + 256]
        cut = match is None and len(tail) < 256 and _DOLLAR_OPEN.fullmatch(tail) is not None
        if not (cut and source.more()):  # a tag cut at the end of the buffer: read on
            break
    if match is None:
        return start + 1, False
    tag = match.group()
    pos = match.end()
    while True:
        found = source.buf.find(tag, pos)
        if found >= 0:
            return found + len(tag), True
        pos = max(pos, len(source.buf) - len(tag) + 1)
        if not source.more():
            return len(source.buf), True


def _copy_data(source: _Input, state: _State) -> Iterator[Unit]:
    """The rows of a COPY block, in pieces, the last ending with its "\\." line."""
    pos = 0
    while True:
        end = _copy_terminator(source, pos)
        if end is not None or source.eof:
            yield _copy_piece(source, state, len(source.buf) if end is None else end, True)
            return
        # Hand on whole lines; the last (perhaps partial) line stays: it may be "\\.".
        cut = source.buf.rfind(b"\n", 0, max(0, len(source.buf) - 1))
        if cut + 1 >= _COPY_PIECE:
            yield _copy_piece(source, state, cut + 1, False)
            pos = 0
        else:
            pos = max(0, cut)
        source.more()


def _copy_terminator(source: _Input, pos: int) -> int | None:
    """The offset past the "\\." line, searched from the line holding ``pos``; None while
    it is not in the buffer (or may be cut at its end)."""
    buf = source.buf
    if pos == 0 and buf[:2] == b"\\.":
        mark = 0
    else:
        found = buf.find(b"\n\\.", pos)
        mark = found + 1 if found >= 0 else -1
    while mark >= 0:
        after = mark + 2
        rest = buf[after : after + 2]
        if rest[:1] == b"\n":
            return after + 1
        if rest == b"\r\n":
            return after + 2
        if len(rest) < 2:
            if not source.eof:
                return None  # the line may go on in the next chunk
            if not rest or rest == b"\r":
                return len(buf)
        found = buf.find(b"\n\\.", mark)
        mark = found + 1 if found >= 0 else -1
    return None


def _copy_piece(source: _Input, state: _State, end: int, last: bool) -> Unit:
    data = source.take(end)
    unit = Unit(COPY, data, state.line, last=last)
    state.line += data.count(b"\n")
    return unit


_FIRST_WORD = re.compile(rb"[A-Za-z_]+")
FILLER = "\x1a"  # stands for a literal's characters in Statement.code


def inserts_in(unit: Unit) -> Iterator[Unit]:
    """The statements of an INSERTS unit, each a STATEMENT unit of its own."""
    line = unit.line
    pos = 0
    for match in _ONE_INSERT.finditer(unit.data):
        line += unit.data.count(b"\n", pos, match.start())
        pos = match.start()
        yield Unit(STATEMENT, match.group(), line, None)


class Statement:
    """A statement's text with what its lexer knew: which spans are literals and
    comments. ``code`` is the text (Latin-1: one character per byte, so offsets agree)
    with comments blanked and literals' contents replaced by FILLER, quotes kept:
    patterns over ``code`` match statements, never what a literal or a body holds."""

    __slots__ = ("_code", "_first", "_text", "unit")

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self._text: str | None = None
        self._code: str | None = None
        self._first: bytes | None = None

    @property
    def first_word(self) -> bytes:
        """The statement's first word, upper case (b"" when it does not begin with one)."""
        if self._first is None:
            match = _FIRST_WORD.match(self.unit.data)
            self._first = match.group().upper() if match else b""
        return self._first

    @property
    def data(self) -> bytes:
        return self.unit.data

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.unit.data.decode("latin-1")
        return self._text

    @property
    def spans(self) -> Spans:
        if self.unit.spans is not None:
            return self.unit.spans
        return [
            (m.start(), m.end(), "string" if m.lastindex == 1 else "ident")
            for m in _SIMPLE_LITERAL.finditer(self.unit.data)
        ]

    @property
    def code(self) -> str:
        if self._code is None:
            text = self.text
            spans = self.spans
            if not spans:
                self._code = text
            else:
                parts: list[str] = []
                pos = 0
                for start, end, kind in spans:
                    parts.append(text[pos:start])
                    if kind == "comment":
                        parts.append(" " * (end - start))
                    elif kind == "ident":
                        parts.append(text[start:end].replace("\n", FILLER))
                    else:
                        parts.append(_blank_literal(text[start:end], kind))
                    pos = end
                parts.append(text[pos:])
                self._code = "".join(parts)
        return self._code

    def code_lines(self) -> Iterator[str]:
        """The statement's lines that begin in code, whole (literals included): never a
        line that begins inside a string, a body or a comment."""
        text = self.text
        spans = self.spans
        index = 0
        start = 0
        while True:
            while index < len(spans) and spans[index][1] <= start:
                index += 1
            inside = index < len(spans) and spans[index][0] < start
            newline = text.find("\n", start)
            end = len(text) if newline < 0 else newline + 1
            if not inside and start < end:
                yield text[start:end]
            if newline < 0:
                return
            start = end

    def literal_values(self) -> Iterator[str]:
        """The statement's string and dollar-quoted literals, as written (quotes kept)."""
        for start, end, kind in self.spans:
            if kind in ("string", "dollar"):
                yield self.text[start:end]


def _blank_literal(literal: str, kind: SpanKind) -> str:
    if kind == "dollar":
        tag_end = literal.index("$", 1) + 1
        tag = literal[:tag_end]
        inner = len(literal) - 2 * len(tag)
        if inner < 0 or not literal.endswith(tag):  # unterminated
            return tag + FILLER * (len(literal) - len(tag))
        return tag + FILLER * inner + tag
    if len(literal) >= 2 and literal.endswith("'"):
        return "'" + FILLER * (len(literal) - 2) + "'"
    return "'" + FILLER * (len(literal) - 1)
