"""Read a plain-SQL dump once: versions, what it declares, which tables carry data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO

from .declared import PlainDeclarations, split_qname

_DUMPED_FROM = re.compile(r"^-- Dumped from database version (\S+)")
_DUMPED_BY = re.compile(r"^-- Dumped by pg_dump(?:all)? version (\S+)")
_COPY = re.compile(
    r"^COPY ((?:\"(?:[^\"]|\"\")+\"|[^\s.(]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[^\s(]+))?)"
    r"(?: \(.*\))? FROM stdin"
)
_INSERT = re.compile(
    r"^INSERT INTO ((?:\"(?:[^\"]|\"\")+\"|[^\s.(]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[^\s(]+))?)"
)
SAFE_META = {"connect", "c", "restrict", "unrestrict", "encoding", "set"}


@dataclass
class PlainScan:
    server_version: str | None = None
    pg_dump_version: str | None = None
    cluster_dump: bool = False
    internal_options: bool = False  # "SET (pg_attver=...)" column options (see translate)
    data_tables: dict[str, int] = field(default_factory=dict)  # table -> rows carried
    meta_commands: list[tuple[int, str]] = field(default_factory=list)
    declarations: PlainDeclarations = field(default_factory=PlainDeclarations)


def scan_plain(stream: IO[bytes]) -> PlainScan:
    result = PlainScan()
    copying: str | None = None
    for number, raw in enumerate(stream, start=1):
        if copying is not None:
            if raw.startswith(b"\\.") and raw.rstrip(b"\r\n") == b"\\.":
                copying = None
            else:
                result.data_tables[copying] += 1
            continue
        line = raw.decode("utf-8", "replace")
        if number <= 20 and line.startswith("--"):
            if "PostgreSQL database cluster dump" in line:
                result.cluster_dump = True
            match = _DUMPED_FROM.match(line) or None
            if match:
                result.server_version = match.group(1)
            match = _DUMPED_BY.match(line)
            if match:
                result.pg_dump_version = match.group(1)
            continue
        if line.startswith("COPY "):
            match = _COPY.match(line)
            if match:
                copying = _table_key(result, match.group(1))
                continue
        elif line.startswith("INSERT INTO "):
            match = _INSERT.match(line)
            if match:
                result.data_tables[_table_key(result, match.group(1))] += 1
                continue
        elif line.startswith("\\"):
            command = line[1:].split(None, 1)[0] if len(line) > 1 else ""
            if command.lower() not in SAFE_META:
                result.meta_commands.append((number, line.strip()[:200]))
            continue
        if line.startswith("ALTER TABLE ONLY ") and "SET (pg_attver=" in line:
            result.internal_options = True
        result.declarations.feed(line)
    return result


def _table_key(result: PlainScan, qname: str) -> str:
    schema, table = split_qname(qname)
    key = f"{schema}.{table}"
    result.data_tables.setdefault(key, 0)
    return key
