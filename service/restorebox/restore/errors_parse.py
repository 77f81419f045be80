"""Turn psql / pg_restore stderr into precise restore errors."""

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
