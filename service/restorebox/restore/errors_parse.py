"""Turn psql / pg_restore stderr into restore errors people can act on.

Parsing is incremental (a parser is fed lines as the tool writes them) and bounded: lines
are cut at ``MAX_LINE`` characters, the first ``MAX_ERRORS`` errors are kept whole, and
every error is counted into a group (its message with names and numbers blanked out),
so the report has the true total and no silent cap. Cascades are folded into their
cause: after a failed ``COPY ... FROM stdin``, psql reads the data rows as commands and
reports each (``invalid command \\N``, syntax errors); those count as the first error's
``cascaded``, not as errors of their own. pg_restore errors are attributed through its
own ``from TOC entry`` lines, which each worker prints with its error, so attribution
holds with parallel jobs."""

from __future__ import annotations

import re
from collections.abc import Callable

from restorebox.models import ErrorGroup, RestoreError

_PSQL = re.compile(
    r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<kind>ERROR|FATAL|error|PANIC):\s+(?P<msg>.*)$"
)
_PSQL_OTHER = re.compile(
    r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<msg>(?:invalid command|error while|could not).*)$"
)
_PSQL_STATEMENT = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+): STATEMENT:\s+(?P<stmt>.*)$")
_PSQL_ANY = re.compile(r"^psql:.*?:\d+: ")
_TOOL_FAILURE = ("psql: error:", "bash:", "gzip:", "zstd:", "lz4:", "timeout:", "sed:")
_PG_RESTORE_ERROR = re.compile(r"^pg_restore: error: (?P<msg>.*)$")
_PG_RESTORE_TOC = re.compile(r"^pg_restore: from TOC entry (?P<id>\d+); \d+ \d+ (?P<what>.*)$")
_PG_RESTORE_ITEM = re.compile(
    r"^pg_restore: (?:creating (?P<kind>.+?) \"(?P<name>.+?)\""
    r"|processing data for table \"(?P<table>.+?)\")$"
)
_CONTINUATION = ("DETAIL:", "HINT:", "CONTEXT:", "LINE ", "QUERY:", "WHERE:")
MAX_ERRORS = 1000
MAX_GROUPS = 200
MAX_LINE = 8192
MAX_STATEMENT = 2000
TAIL_LINES = 20

Hinter = Callable[[str], str | None]


def template_of(message: str) -> str:
    """The message with names, literals and numbers blanked: errors of one kind group."""
    text = re.sub(r'"(?:[^"]|"")*"', '"…"', message)
    text = re.sub(r"'(?:[^']|'')*'", "'…'", text)
    text = re.sub(r"\b\d+\b", "N", text)
    return text[:300]


class _Parser:
    """What both tools' parsers share: keeping errors, groups and totals."""

    def __init__(self, backup: str, hinter: Hinter | None) -> None:
        self.backup = backup
        self.hinter = hinter
        self.errors: list[RestoreError] = []
        self.groups: dict[str, ErrorGroup] = {}
        self.total = 0
        self.cascaded = 0

    def record(self, error: RestoreError) -> tuple[RestoreError | None, ErrorGroup]:
        """Count an error into its group; keep it whole if there is room."""
        self.total += 1
        template = template_of(error.message.split("\n", 1)[0])
        group = self.groups.get(template)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                template = "(other errors)"
                group = self.groups.get(template)
            if group is None:
                group = ErrorGroup(
                    backup=self.backup,
                    template=template,
                    count=0,
                    first_message=error.message[:1000],
                    first_line=error.line,
                    first_toc_entry=error.toc_entry,
                    hint=self.hinter(error.message) if self.hinter else None,
                )
                self.groups[template] = group
        group.count += 1
        if len(self.errors) >= MAX_ERRORS:
            return None, group
        self.errors.append(error)
        return error, group


CASCADE_STARTS = ("invalid command \\N", "invalid command \\.", "backslash commands are restricted")
CASCADE_GOES_ON = ("invalid command", "syntax error", "backslash commands are restricted")


class PsqlParser(_Parser):
    def __init__(self, backup: str, hinter: Hinter | None = None) -> None:
        super().__init__(backup, hinter)
        self._attach: RestoreError | None = None  # the error continuation lines belong to
        self._cause: RestoreError | None = None  # what a cascade is folded into
        self._cause_group: ErrorGroup | None = None
        self._in_cascade = False
        self._statement = False  # continuation lines belong to the echoed statement

    def feed(self, raw: str) -> None:
        if (m := _PSQL.match(raw)) or (m := _PSQL_OTHER.match(raw)):
            message, line = m.group("msg"), int(m.group("line"))
            # Data rows read as commands: "\N" (a NULL first column) and "\." (the end of
            # the data) start a cascade; inside one, any invalid command or syntax error
            # is one more data row.
            # psql in \restrict mode (pg_dump 17.6 and later) says the rows it refuses are
            # "backslash commands are restricted": the same cascade.
            cascade = message.startswith(CASCADE_STARTS) or (
                self._in_cascade and message.startswith(CASCADE_GOES_ON)
            )
            if cascade and self._cause_group is not None:
                self._in_cascade = True
                self.cascaded += 1
                self._cause_group.cascaded += 1
                if self._cause is not None:
                    self._cause.cascaded += 1
                self._attach = None
                return
            self._in_cascade = False
            self._statement = False
            error = RestoreError(backup=self.backup, message=message, line=line)
            self._attach, self._cause_group = self.record(error)
            self._cause = self._attach
        elif m := _PSQL_STATEMENT.match(raw):  # psql -b echoes the failed statement
            self._statement = self._attach is not None and self._attach.statement is None
            if self._statement and self._attach is not None:
                self._attach.statement = m.group("stmt")[:MAX_STATEMENT]
        elif _PSQL_ANY.match(raw):
            self._attach = None  # a NOTICE or WARNING: its DETAIL/HINT are not the error's
            self._statement = False
        elif self._statement and self._attach is not None and self._attach.statement:
            if len(self._attach.statement) < MAX_STATEMENT:
                self._attach.statement += "\n" + raw
        elif raw.startswith(_CONTINUATION):
            if self._attach is not None and len(self._attach.detail or "") < MAX_STATEMENT:
                self._attach.detail = ((self._attach.detail or "") + "\n" + raw.strip()).strip()
        elif raw.startswith(_TOOL_FAILURE):
            self._attach, _ = self.record(RestoreError(backup=self.backup, message=raw.strip()))


class PgRestoreParser(_Parser):
    def __init__(self, backup: str, hinter: Hinter | None = None) -> None:
        super().__init__(backup, hinter)
        self._toc: str | None = None  # from the latest "from TOC entry" line
        self._current: str | None = None  # from "creating ..." lines (serial restores)
        self._last: RestoreError | None = None
        self._collecting = False

    def feed(self, raw: str) -> None:
        if m := _PG_RESTORE_TOC.match(raw):
            what = m.group("what").rsplit(" ", 1)[0]  # drop the owner
            self._toc = f"{m.group('id')}; {what}"
            self._collecting = False
            return
        if m := _PG_RESTORE_ITEM.match(raw):
            if m.group("kind"):
                self._current = f"{m.group('kind')} {m.group('name')}"
            else:
                self._current = f"TABLE DATA {m.group('table')}"
            self._toc = None
            self._collecting = False
            return
        if m := _PG_RESTORE_ERROR.match(raw):
            message = m.group("msg").removeprefix("could not execute query: ")
            message = message.removeprefix("ERROR:  ")
            entry = self._toc or self._current
            self._last, _ = self.record(
                RestoreError(backup=self.backup, message=message, toc_entry=entry)
            )
            self._toc = None
            self._collecting = False
            return
        last = self._last
        if last is None:
            return
        if raw.startswith("Command was: "):
            last.statement = raw.removeprefix("Command was: ")[:MAX_STATEMENT]
            self._collecting = True
        elif raw.startswith("pg_restore:"):
            self._collecting = False
        elif self._collecting and raw.strip():
            if len(last.statement or "") < MAX_STATEMENT:
                last.statement = (last.statement or "") + "\n" + raw
        elif raw.startswith(_CONTINUATION) and len(last.detail or "") < MAX_STATEMENT:
            last.detail = ((last.detail or "") + "\n" + raw.strip()).strip()


def parse_psql(stderr: str, backup: str) -> list[RestoreError]:
    parser = PsqlParser(backup)
    for line in stderr.splitlines():
        parser.feed(line)
    return parser.errors


def parse_pg_restore(stderr: str, backup: str) -> list[RestoreError]:
    parser = PgRestoreParser(backup)
    for line in stderr.splitlines():
        parser.feed(line)
    return parser.errors


_OWN_WARNING = "WARNING:  restorebox: "
MAX_NOTES = 100


class StderrCollector:
    """Fed stderr chunks as they arrive; parses them line by line (each line cut at
    MAX_LINE) and keeps the last few lines for messages. Memory stays bounded whatever
    the tool prints."""

    def __init__(self, tool: str, backup: str, hinter: Hinter | None = None) -> None:
        self.tool = tool
        self.parser: PsqlParser | PgRestoreParser = (
            PsqlParser(backup, hinter) if tool == "psql" else PgRestoreParser(backup, hinter)
        )
        self._partial = bytearray()
        self.tail: list[str] = []
        self.notes: list[str] = []  # restorebox's own WARNINGs from the rewritten SQL

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = MAX_LINE - len(self._partial)
            if room > 0:
                self._partial += piece[:room]
            if end < 0:
                return
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = bytearray()
            start = end + 1

    def close(self) -> None:
        if self._partial:
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = bytearray()

    def _line(self, line: str) -> None:
        self.tail = [*self.tail[-(TAIL_LINES - 1) :], line[:500]]
        if (found := line.find(_OWN_WARNING)) >= 0 and len(self.notes) < MAX_NOTES:
            self.notes.append(line[found + len(_OWN_WARNING) :][:500])
        self.parser.feed(line)

    @property
    def errors(self) -> list[RestoreError]:
        return self.parser.errors

    @property
    def total_errors(self) -> int:
        return self.parser.total

    @property
    def groups(self) -> list[ErrorGroup]:
        return sorted(self.parser.groups.values(), key=lambda g: -g.count)

    def text(self) -> str:
        return "\n".join(self.tail)
