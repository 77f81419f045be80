"""Read a plain-SQL dump once: versions, what it declares, which tables carry data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO

from restorebox.backups.columns import ColumnScan
from restorebox.backups.declared import PlainDeclarations, split_qname, unquote
from restorebox.backups.sniff import TOOL_MESSAGE

_DUMPED_FROM = re.compile(r"^-- Dumped from database version (\S+)")
_DUMPED_BY = re.compile(r"^-- Dumped by pg_dump(?:all)? version (\S+)")
_COPY = re.compile(
    r"^COPY ((?:\"(?:[^\"]|\"\")+\"|[^\s.(]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[^\s(]+))?)"
    r"(?: \(.*\))? FROM stdin"
)
_INSERT = re.compile(
    r"^INSERT INTO ((?:\"(?:[^\"]|\"\")+\"|[^\s.(]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[^\s(]+))?)"
)
_CREATE_DATABASE = re.compile(r'^CREATE DATABASE ("(?:[^"]|"")+"|[^\s;]+)(.*)$')
_CONNECT = re.compile(r"^\\(?:connect|c)\s+(?:-reuse-previous=\S+\s+)?(.+?)\s*$")
_LOCALE = re.compile(r"\b(?:LOCALE|LC_COLLATE|LC_CTYPE) = '([^']+)'")
SAFE_META = {"connect", "c", "restrict", "unrestrict", "encoding", "set"}
TEMPLATES = {"template0", "template1"}
WATCHED = ("supabase_functions",)  # platform schemas whose use changes what is prepared


@dataclass
class PlainScan:
    server_version: str | None = None
    pg_dump_version: str | None = None
    cluster_dump: bool = False
    internal_options: bool = False  # "SET (pg_attver=...)" column options (see translate)
    data_tables: dict[str, int] = field(default_factory=dict)  # table -> rows carried
    meta_commands: list[tuple[int, str]] = field(default_factory=list)
    declarations: PlainDeclarations = field(default_factory=PlainDeclarations)
    # Files that make and connect to databases (pg_dumpall, pg_dump --create): what each
    # database holds, in the order the file reaches them; the main one is described above.
    databases: list[str] = field(default_factory=list)
    per_database: dict[str, tuple[PlainDeclarations, dict[str, int]]] = field(default_factory=dict)
    main_database: str | None = None
    locales: set[str] = field(default_factory=set)
    clean: bool = False  # DROP statements (pg_dump --clean)
    security_labels: bool = False
    ends_complete: bool = False  # pg_dump's or pg_dumpall's "dump complete" trailer
    mentions: set[str] = field(default_factory=set)
    all_roles: set[str] = field(default_factory=set)
    created_roles: set[str] = field(default_factory=set)
    tool_messages: int = 0  # lines of pg_dump's own messages at the top (skipped)
    columns: ColumnScan = field(default_factory=ColumnScan)  # every database's, together


def scan_plain(stream: IO[bytes]) -> PlainScan:
    result = PlainScan()
    copying: str | None = None
    at_top = True
    for number, raw in enumerate(stream, start=1):
        if at_top and raw.startswith(TOOL_MESSAGE):
            result.tool_messages += 1  # pg_dump's stderr at the top (2>&1): not SQL
            continue
        at_top = False
        if copying is not None:
            if raw.startswith(b"\\.") and raw.rstrip(b"\r\n") == b"\\.":
                copying = None
            else:
                result.data_tables[copying] += 1
            continue
        line = raw.decode("utf-8", "replace")
        # pg_dump ends with its trailer (pg_dumpall: one per database, then its own); a
        # statement after the last one means there is more, a file without means cut short.
        if line.startswith("-- PostgreSQL database ") and "dump complete" in line:
            result.ends_complete = True
            continue
        if line.strip() and not line.startswith(("--", "\\unrestrict")):
            result.ends_complete = False
        if number - result.tool_messages <= 20 and line.startswith("--"):
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
                result.columns.feed(line)
                continue
        elif line.startswith("INSERT INTO "):
            match = _INSERT.match(line)
            if match:
                if not result.data_tables.get(_table_key(result, match.group(1))):
                    result.columns.feed(line)  # the first row's INSERT names the columns
                result.data_tables[_table_key(result, match.group(1))] += 1
                continue
        elif line.startswith("\\"):
            command = line[1:].split(None, 1)[0] if len(line) > 1 else ""
            if command.lower() not in SAFE_META:
                result.meta_commands.append((number, line.strip()[:200]))
            elif (match := _CONNECT.match(line.rstrip("\n"))) is not None:
                _switch(result, _database_name(match.group(1)))
            continue
        elif line.startswith("CREATE DATABASE "):
            match = _CREATE_DATABASE.match(line)
            if match:
                _note_database(result, unquote(match.group(1)))
                result.locales.update(_LOCALE.findall(match.group(2)))
        if line.startswith("DROP "):
            result.clean = True
        elif line.startswith("SECURITY LABEL FOR "):
            result.security_labels = True
        for name in WATCHED:
            if name in line:
                result.mentions.add(name)
        if line.startswith("ALTER TABLE ONLY ") and "SET (pg_attver=" in line:
            result.internal_options = True
        result.declarations.feed(line)
        result.columns.feed(line)
    _settle_databases(result)
    if not result.created_roles:
        result.created_roles = set(result.declarations.creates_roles)
    return result


def _database_name(argument: str) -> str:
    """\\connect's argument: a name, a quoted name, or a "dbname='x'" connection string."""
    text = argument.strip()
    quoted = len(text) > 1 and text.startswith('"') and text.endswith('"')
    if quoted:
        text = text[1:-1].replace('""', '"')
    match = re.search(r"dbname='((?:[^']|\\')*)'", text) or re.search(r"dbname=(\S+)", text)
    if match:
        return match.group(1).replace("\\'", "'")
    return text if quoted else text.split()[0]


def _note_database(result: PlainScan, name: str) -> None:
    if name not in TEMPLATES and name not in result.databases:
        result.databases.append(name)


def _switch(result: PlainScan, name: str) -> None:
    """Later declarations and data belong to database ``name``."""
    if not result.per_database:
        # What came before the first \\connect is cluster-wide (roles) or belongs to the
        # database psql started in: kept for its roles only.
        result.per_database[""] = (result.declarations, result.data_tables)
    _note_database(result, name)
    if name not in result.per_database:
        result.per_database[name] = (PlainDeclarations(), {})
    result.declarations, result.data_tables = result.per_database[name]


def _settle_databases(result: PlainScan) -> None:
    if not result.per_database:
        return
    buckets = [d for d, _ in result.per_database.values()]
    created = set().union(*(d.creates_roles for d in buckets))
    result.created_roles = created
    result.all_roles = set().union(*(d.roles for d in buckets)) - created
    for name in [*TEMPLATES, ""]:
        result.per_database.pop(name, None)

    # The main database: the one holding the most rows, then the most objects, preferring
    # any over the maintenance database.
    def weight(name: str) -> tuple[bool, int, int]:
        declared, rows = result.per_database.get(name, (PlainDeclarations(), {}))
        return (name != "postgres", sum(rows.values()), len(declared.objects))

    ranked = sorted(result.databases, key=weight, reverse=True)
    result.main_database = ranked[0] if ranked else None
    if result.main_database in result.per_database:
        result.declarations, result.data_tables = result.per_database[result.main_database]


def _table_key(result: PlainScan, qname: str) -> str:
    schema, table = split_qname(qname)
    key = f"{schema}.{table}"
    result.data_tables.setdefault(key, 0)
    return key
