"""Read a plain-SQL dump once: versions, what it declares, which tables carry data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from restorebox.backups.columns import ColumnScan
from restorebox.backups.declared import PlainDeclarations, split_qname, unquote
from restorebox.backups.encodings import python_codec
from restorebox.backups.sniff import TOOL_MESSAGE
from restorebox.sql.lexer import COPY, GAP, INSERTS, META, Statement, inserts_in, units

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
_CLIENT_ENCODING = re.compile(
    r"SET\s+client_encoding\s*(?:=|TO)\s*'([A-Za-z0-9_]+)'", re.IGNORECASE
)
_SEARCH_PATH = re.compile(
    r"(?:SET\s+search_path\s*(?:=|TO)\s*([^;]*);"
    r"|SELECT\s+pg_catalog\.set_config\('search_path',\s*'([^']*)')",
    re.IGNORECASE,
)
CHUNK = 1 << 20
_MORE_DUMP = re.compile(rb"\n(?:COPY \S+ .*FROM stdin;|-- Data for Name: |CREATE TABLE )")
# Syntax a major brought, in statements' code: a file that uses it needs that major.
NEWER_SYNTAX = [
    (re.compile(r"\buuidv7\s*\("), "uuidv7()", 18),
    (re.compile(r"\bGENERATED ALWAYS AS \(.*\) VIRTUAL\b"), "VIRTUAL generated columns", 18),
    (re.compile(r"\bJSON_TABLE\s*\("), "JSON_TABLE", 17),
]
NEWER_WORDS = ("uuidv7", "VIRTUAL", "JSON_TABLE")
SETVAL = re.compile(r"\bsetval\('((?:[^']|'')+)', (-?\d+), (true|false)\)")
# Kinds whose new owner must be a superuser (event triggers, foreign-data wrappers) or
# hold a privilege granted only later in the dump (a server's, USAGE on its wrapper).
SUPERUSER_OWNED_KINDS = ("EVENT TRIGGER", "FOREIGN DATA WRAPPER", "SERVER", "PROCEDURAL LANGUAGE")
OWNED_BY_SUPERUSER = re.compile(
    r"^ALTER (EVENT TRIGGER|FOREIGN DATA WRAPPER|SERVER|(?:PROCEDURAL )?LANGUAGE) "
    r'("(?:[^"]|"")+"|\S+) OWNER TO '
)
SAFE_META = {"connect", "c", "restrict", "unrestrict", "encoding", "set"}
TEMPLATES = {"template0", "template1"}
WATCHED = (
    "supabase_functions",
    "heroku_ext",
)  # platform schemas whose use changes what is prepared


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
    encoding: str | None = None  # the dump's SET client_encoding (what its text is in)
    schema: str = "public"  # where unqualified names live now (SET search_path)
    created_databases: set[str] = field(default_factory=set)  # by CREATE DATABASE
    unended_copy: str | None = None  # a COPY block whose "\." line is gone
    superuser_owned: list[str] = field(default_factory=list)  # see Backup.superuser_owned
    sequence_values: dict[str, tuple[int, bool]] = field(default_factory=dict)
    needs: dict[str, int] = field(default_factory=dict)  # construct -> the major it needs
    columns: ColumnScan = field(default_factory=ColumnScan)  # every database's, together


def scan_plain(stream: IO[bytes]) -> PlainScan:
    """Read a plain dump once, unit by unit (``sql.lexer``): statements are read where
    they are code, never inside a literal, a body, a comment or COPY data."""
    result = PlainScan()
    copying: str | None = None
    suspect = False  # the COPY block being read holds what looks like more dump
    codec = "utf-8"
    for unit in units(_after_tool_messages(stream, result)):
        if unit.kind == COPY:
            ended = unit.last and _ends_with_terminator(unit.data)
            rows = unit.data.count(b"\n") - (1 if ended else 0)
            if unit.last and unit.data and not unit.data.endswith(b"\n"):
                rows += 1  # the input ended inside the block, in its last row
            # The dump going on inside the "data" of a block that never ends: its rows
            # and "\." were cut out, and psql would read the rest of the file as rows.
            suspect = suspect or _MORE_DUMP.search(unit.data) is not None
            if unit.last and not ended and suspect and copying is not None:
                result.unended_copy = result.unended_copy or copying
            if copying is not None:
                result.data_tables[copying] += rows
            continue
        if unit.kind == GAP:
            _read_comments(result, unit.data.decode(codec, "replace"), unit.line)
            continue
        line = unit.data.decode(codec, "replace")
        if unit.kind == META:
            _read_meta(result, line, unit.line)
            continue
        result.ends_complete = False  # a statement after the trailer: there is more
        if unit.kind == INSERTS:
            for insert in inserts_in(unit):
                _read_statement(result, Statement(insert), codec)
            continue
        statement = Statement(unit)
        copying = _read_statement(result, statement, codec)
        suspect = False
        if (encoding := _client_encoding(statement)) is not None:
            result.encoding = encoding
            codec = python_codec(encoding) or "latin-1"
        elif (schema := _search_path(statement)) is not None:
            _set_schema(result, schema)
    _settle_databases(result)
    if not result.created_roles:
        result.created_roles = set(result.declarations.creates_roles)
    return result


def _after_tool_messages(stream: IO[bytes], result: PlainScan) -> Iterator[bytes]:
    """The stream's bytes after the lines of pg_dump's own messages at its top (2>&1)."""
    line = stream.readline()
    while line.startswith(TOOL_MESSAGE):
        result.tool_messages += 1
        line = stream.readline()
    yield line
    while chunk := stream.read(CHUNK):
        yield chunk


def _ends_with_terminator(data: bytes) -> bool:
    return data.endswith((b"\n\\.\n", b"\n\\.\r\n")) or data in (b"\\.\n", b"\\.\r\n")


def _read_comments(result: PlainScan, text: str, first_line: int) -> None:
    for offset, line in enumerate(text.splitlines()):
        # pg_dump ends with its trailer (pg_dumpall: one per database, then its own); a
        # statement after the last one means there is more, a file without means cut short.
        if line.startswith("-- PostgreSQL database ") and "dump complete" in line:
            result.ends_complete = True
        elif first_line + offset <= 20 and line.startswith("--"):
            if "PostgreSQL database cluster dump" in line:
                result.cluster_dump = True
            if match := _DUMPED_FROM.match(line):
                result.server_version = match.group(1)
            if match := _DUMPED_BY.match(line):
                result.pg_dump_version = match.group(1)


def _read_meta(result: PlainScan, line: str, number: int) -> None:
    command = line[1:].split(None, 1)[0] if len(line.strip()) > 1 else ""
    if command.lower() not in SAFE_META:
        result.meta_commands.append((number + result.tool_messages, line.strip()[:200]))
    elif (match := _CONNECT.match(line.rstrip("\r\n"))) is not None:
        _switch(result, _database_name(match.group(1)))


def _read_statement(result: PlainScan, statement: Statement, codec: str) -> str | None:
    """What one statement declares; the table its COPY data belongs to, if it is one."""
    text = statement.text
    for name in WATCHED:
        if name in text:
            result.mentions.add(name)
    copying: str | None = None
    if any(word in text for word in NEWER_WORDS):  # looked for in code, not literals
        for pattern, construct, major in NEWER_SYNTAX:
            if construct not in result.needs and pattern.search(statement.code):
                result.needs[construct] = major
    for raw in statement.code_lines():
        line = raw if codec == "latin-1" else raw.encode("latin-1").decode(codec, "replace")
        if line.startswith("SELECT ") and (match := SETVAL.search(line)):
            key = ".".join(split_qname(match.group(1).replace("''", "'"), result.schema))
            result.sequence_values[key] = (int(match.group(2)), match.group(3) == "true")
        if line.startswith("ALTER ") and (match := OWNED_BY_SUPERUSER.match(line)):
            result.superuser_owned.append(f"{match.group(1)} {unquote(match.group(2))}")
        if line.startswith("COPY "):
            match = _COPY.match(line)
            if match:
                copying = _table_key(result, match.group(1))
        elif line.startswith("INSERT INTO "):
            match = _INSERT.match(line)
            if match:
                if not result.data_tables.get(_table_key(result, match.group(1))):
                    result.columns.feed(line)  # the first row's INSERT names the columns
                result.data_tables[_table_key(result, match.group(1))] += 1
                return None
        elif line.startswith("CREATE DATABASE "):
            match = _CREATE_DATABASE.match(line)
            if match:
                _note_database(result, unquote(match.group(1)))
                result.created_databases.add(unquote(match.group(1)))
                result.locales.update(_LOCALE.findall(match.group(2)))
        if line.startswith("DROP "):
            result.clean = True
        elif line.startswith("SECURITY LABEL FOR "):
            result.security_labels = True
        if line.startswith("ALTER TABLE ONLY ") and "SET (pg_attver=" in line:
            result.internal_options = True
        result.declarations.feed(line)
        result.columns.feed(line)
    return copying


def _search_path(statement: Statement) -> str | None:
    """The schema unqualified names go to after ``SET search_path = s, ...`` (pg_dump
    before 10.3) or pg_dump's ``set_config('search_path', '', false)``."""
    if statement.first_word not in (b"SET", b"SELECT"):
        return None
    match = _SEARCH_PATH.match(statement.text)
    if match is None:
        return None
    entries = [e.strip().strip("'") for e in (match.group(1) or match.group(2) or "").split(",")]
    # "$user" is the role's own schema, which a restore rarely has: the next one is used.
    named = [e for e in entries if e and e.strip('"') not in ("$user", "pg_catalog")]
    return unquote(named[0]) if named else "public"


def _set_schema(result: PlainScan, schema: str) -> None:
    result.schema = schema
    result.declarations.schema = schema
    result.columns.schema = schema


def _client_encoding(statement: Statement) -> str | None:
    if statement.data[:3].upper() != b"SET":
        return None
    match = _CLIENT_ENCODING.match(statement.text)
    return match.group(1).upper() if match else None


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
    _set_schema(result, "public")  # a new session: its own search_path


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
    schema, table = split_qname(qname, result.schema)
    key = f"{schema}.{table}"
    result.data_tables.setdefault(key, 0)
    return key
