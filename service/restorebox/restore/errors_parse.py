"""Turn psql / pg_restore stderr into precise restore errors.

Parsing is incremental (``StderrCollector`` is fed chunks as the tool writes them) and
bounded: lines are cut at ``MAX_LINE`` bytes, at most ``MAX_ERRORS`` errors are kept,
and ``total`` counts every error, kept or not."""

from __future__ import annotations

import re

from ..models import RestoreError

_PSQL = re.compile(
    r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<kind>ERROR|FATAL|error|PANIC):\s+(?P<msg>.*)$"
)
_PSQL_STATEMENT = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+): STATEMENT:\s+(?P<stmt>.*)$")
_PSQL_OTHER = re.compile(
    r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<msg>(?:invalid command|error while|could not).*)$"
)
_PG_RESTORE_ERROR = re.compile(r"^pg_restore: error: (?P<msg>.*)$")
_PG_RESTORE_ITEM = re.compile(
    r"^pg_restore: (?:creating (?P<kind>.+?) \"(?P<name>.+?)\""
    r"|processing data for table \"(?P<table>.+?)\""
    r"|launching item (?P<item>.+)|processing item (?P<pitem>.+))$"
)
MAX_ERRORS = 1000
MAX_LINE = 8192
TAIL_LINES = 20


def parse_psql(stderr: str, backup: str) -> list[RestoreError]:
    errors: list[RestoreError] = []
    for raw in stderr.splitlines():
        if (m := _PSQL.match(raw)) or (m := _PSQL_OTHER.match(raw)):
            if len(errors) >= MAX_ERRORS:
                break
            errors.append(
                RestoreError(backup=backup, message=m.group("msg"), line=int(m.group("line")))
            )
        elif (m := _PSQL_STATEMENT.match(raw)) and errors and errors[-1].statement is None:
            errors[-1].statement = m.group("stmt")[:2000]
        elif errors and errors[-1].statement is not None and not raw.startswith("psql:"):
            if len(errors[-1].statement) < 2000:  # continuation of a multi-line statement
                errors[-1].statement += "\n" + raw
        elif errors and raw.startswith(("DETAIL:", "CONTEXT:", "HINT:")):
            errors[-1].message += " " + raw.strip()
        elif raw.startswith(("psql: error:", "bash:", "gzip:", "zstd:", "lz4:", "timeout:")):
            errors.append(RestoreError(backup=backup, message=raw.strip()))
    return errors


def parse_pg_restore(stderr: str, backup: str) -> list[RestoreError]:
    errors: list[RestoreError] = []
    current: str | None = None
    collecting = False
    for raw in stderr.splitlines():
        if m := _PG_RESTORE_ITEM.match(raw):
            collecting = False
            if m.group("kind"):
                current = f"{m.group('kind')} {m.group('name')}"
            elif m.group("table"):
                current = f"TABLE DATA {m.group('table')}"
            else:
                current = (m.group("item") or m.group("pitem") or "").strip()
            continue
        if m := _PG_RESTORE_ERROR.match(raw):
            if len(errors) >= MAX_ERRORS:
                break
            message = m.group("msg")
            message = message.removeprefix("could not execute query: ")
            errors.append(RestoreError(backup=backup, message=message, toc_entry=current))
            collecting = False
            continue
        if not errors:
            continue
        if raw.startswith("Command was: "):
            errors[-1].statement = raw.removeprefix("Command was: ")
            collecting = True
        elif raw.startswith("pg_restore:"):
            collecting = False
        elif collecting and raw.strip() and len(errors[-1].statement or "") < 2000:
            errors[-1].statement = (errors[-1].statement or "") + "\n" + raw
        elif raw.startswith(("DETAIL:", "CONTEXT:", "HINT:")):
            errors[-1].message += " " + raw.strip()
    return errors


class StderrCollector:
    """Fed stderr chunks as they arrive; keeps a bounded amount of it: the lines that
    matter to the parser (each cut at MAX_LINE), and the last few lines for messages."""

    def __init__(self, tool: str, backup: str, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.tool = tool
        self.backup = backup
        self.max_bytes = max_bytes
        self._kept: list[str] = []
        self._kept_bytes = 0
        self._partial = bytearray()
        self._partial_cut = False
        self.total_errors = 0
        self.dropped_lines = 0
        self.tail: list[str] = []

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = MAX_LINE - len(self._partial)
            if room > 0:
                self._partial += piece[:room]
            if len(piece) > room:
                self._partial_cut = True
            if end < 0:
                return
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = bytearray()
            self._partial_cut = False
            start = end + 1

    def close(self) -> None:
        if self._partial:
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = bytearray()

    def _line(self, line: str) -> None:
        self.tail = [*self.tail[-(TAIL_LINES - 1) :], line[:500]]
        if _is_error(line, self.tool):
            self.total_errors += 1
        if self._kept_bytes + len(line) > self.max_bytes:
            self.dropped_lines += 1
            return
        self._kept.append(line)
        self._kept_bytes += len(line) + 1

    def errors(self) -> list[RestoreError]:
        text = "\n".join(self._kept)
        parse = parse_psql if self.tool == "psql" else parse_pg_restore
        return parse(text, self.backup)

    def text(self) -> str:
        return "\n".join(self.tail)


def _is_error(line: str, tool: str) -> bool:
    if tool == "psql":
        return bool(_PSQL.match(line) or _PSQL_OTHER.match(line))
    return bool(_PG_RESTORE_ERROR.match(line))
