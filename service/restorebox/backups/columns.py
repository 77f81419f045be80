"""The columns a dump's tables have, and the masking rules it carries.

A masking policy names tables and columns; it is checked against these before any
container starts. pg_dump writes one column per line inside ``CREATE TABLE`` and lists
the columns of every ``COPY`` (and of ``--column-inserts`` INSERTs), so a line scan
finds them in plain files; archives hold the same statements in their TOC.

PostgreSQL Anonymizer declares its rules as ``SECURITY LABEL FOR anon ON COLUMN
s.t.c IS 'MASKED WITH ...'``; pg_dump keeps them, and restorebox reads them here
(restore/translate skips the statements themselves: no label provider is loaded)."""

from __future__ import annotations

import re

from restorebox.backups.archive import ArchiveToc
from restorebox.backups.declared import IDENT, QNAME, split_qname, unquote
from restorebox.backups.model import AnonLabel

_CREATE_TABLE = re.compile(
    rf"^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?({QNAME}) \($"  # columns follow
)
_COLUMN = re.compile(rf"^\s+({IDENT}) ")
_NOT_COLUMNS = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE", "LIKE")
_COLUMN_LIST = re.compile(
    rf"^(?:COPY|INSERT INTO) ({QNAME}) \(((?:{IDENT})(?:, {IDENT})*)\)(?: FROM stdin| VALUES)"
)
_LABEL = re.compile(
    rf"^SECURITY LABEL FOR anon ON COLUMN ({IDENT})\.({IDENT})\.({IDENT}) IS "
    r"'((?:[^']|'')*)';?\s*$",
    re.IGNORECASE,
)


class ColumnScan:
    """Fed a plain file's lines in order (statements' first lines at least)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[str]] = {}
        self.labels: list[AnonLabel] = []
        self._table: str | None = None  # inside this CREATE TABLE's column list
        self.schema = "public"  # where unqualified names live (SET search_path)

    def feed(self, line: str) -> None:
        if self._table is not None:
            if line.startswith(")"):
                self._table = None
            elif (match := _COLUMN.match(line)) and match.group(1) not in _NOT_COLUMNS:
                self._add(self._table, [unquote(match.group(1))])
            return
        if line.startswith("CREATE ") and (match := _CREATE_TABLE.match(line.rstrip())):
            self._table = _key(match.group(1), self.schema)
            self.columns.setdefault(self._table, [])
        elif line.startswith(("COPY ", "INSERT INTO ")) and (match := _COLUMN_LIST.match(line)):
            self._add(
                _key(match.group(1), self.schema),
                [unquote(c) for c in re.findall(IDENT, match.group(2))],
            )
        elif line.startswith(("SECURITY LABEL", "security label")) and (
            match := _LABEL.match(line.rstrip("\r\n"))
        ):
            schema, table, column = (unquote(match.group(i)) for i in (1, 2, 3))
            label = match.group(4).replace("''", "'")
            self.labels.append(AnonLabel(table=f"{schema}.{table}", column=column, label=label))

    def _add(self, table: str, columns: list[str]) -> None:
        known = self.columns.setdefault(table, [])
        known += [c for c in columns if c not in known]


def scan_toc(toc: ArchiveToc) -> ColumnScan:
    """The same, from an archive's TOC: table definitions, COPY statements, labels."""
    scan = ColumnScan()
    for entry in toc.entries:
        if entry.desc in ("TABLE", "SECURITY LABEL"):
            for line in (entry.defn or "").splitlines():
                scan.feed(line)
        elif entry.desc == "TABLE DATA" and entry.copy_stmt:
            scan.feed(entry.copy_stmt)
    return scan


def _key(qname: str, default_schema: str = "public") -> str:
    schema, table = split_qname(qname, default_schema)
    return f"{schema}.{table}"
