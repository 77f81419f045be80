"""What a dump declares: objects, roles it names, and tables it carries data for.

pg_dump writes one statement head per line in a predictable shape, so a line scan
finds them in plain files; archives name them in their TOC."""

from __future__ import annotations

import re

from restorebox.backups.archive import ArchiveToc
from restorebox.backups.model import DeclaredObject

IDENT = r'(?:"(?:[^"]|"")+"|[^\s.(,;"]+)'
QNAME = rf"{IDENT}(?:\.{IDENT})?"

_OBJECT_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("TABLE", re.compile(rf"^CREATE (?:UNLOGGED |FOREIGN )?TABLE (?:IF NOT EXISTS )?({QNAME})")),
    ("MATERIALIZED VIEW", re.compile(rf"^CREATE MATERIALIZED VIEW ({QNAME})")),
    ("VIEW", re.compile(rf"^CREATE (?:OR REPLACE )?(?:RECURSIVE )?VIEW ({QNAME})")),
    ("FUNCTION", re.compile(rf"^CREATE (?:OR REPLACE )?FUNCTION ({QNAME})\(")),
    ("PROCEDURE", re.compile(rf"^CREATE (?:OR REPLACE )?PROCEDURE ({QNAME})\(")),
    ("INDEX", re.compile(rf"^CREATE (?:UNIQUE )?INDEX ({IDENT}) ON (?:ONLY )?({QNAME})")),
    ("TRIGGER", re.compile(rf"^CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER ({IDENT}) ")),
    ("POLICY", re.compile(rf"^CREATE POLICY ({IDENT}) ON ({QNAME})")),
    ("EXTENSION", re.compile(rf"^CREATE EXTENSION (?:IF NOT EXISTS )?({IDENT})")),
    ("SEQUENCE", re.compile(rf"^CREATE SEQUENCE (?:IF NOT EXISTS )?({QNAME})")),
    ("SCHEMA", re.compile(rf"^CREATE SCHEMA (?:IF NOT EXISTS )?({IDENT})")),
]
_ADD_CONSTRAINT = re.compile(
    rf"^\s*ADD CONSTRAINT ({IDENT}) (FOREIGN KEY|PRIMARY KEY|UNIQUE|CHECK|EXCLUDE)"
)
_ALTER_TABLE = re.compile(rf"^ALTER (?:FOREIGN )?TABLE (?:ONLY )?({QNAME})")
_ROW_SECURITY = re.compile(rf"^ALTER TABLE (?:ONLY )?({QNAME}) ENABLE ROW LEVEL SECURITY")
_TRIGGER_ON = re.compile(rf"\bON ({QNAME})")

_OWNER = re.compile(rf"\bOWNER TO ({IDENT});")
_GRANT_TO = re.compile(rf"^GRANT .+? TO ((?:{IDENT})(?:\s*,\s*{IDENT})*)")
_REVOKE_FROM = re.compile(rf"^REVOKE .+? FROM ((?:{IDENT})(?:\s*,\s*{IDENT})*)")
_POLICY_TO = re.compile(rf"^CREATE POLICY .+? TO ((?:{IDENT})(?:\s*,\s*{IDENT})*)")
_SESSION_AUTH = re.compile(r"^SET SESSION AUTHORIZATION '((?:[^']|'')+)'")
_SET_ROLE = re.compile(rf"^SET ROLE ({IDENT})")
_DEFAULT_PRIVS = re.compile(rf"^ALTER DEFAULT PRIVILEGES FOR ROLE ({IDENT})")
_DEFAULT_PRIVS_TO = re.compile(
    rf"^ALTER DEFAULT PRIVILEGES .*? (?:TO|FROM) ((?:{IDENT})(?:\s*,\s*{IDENT})*)"
)
# Hand-written files spell it in lower case ("create user admin with password ...").
_CREATE_ROLE = re.compile(rf"^CREATE\s+(?:ROLE|USER|GROUP)\s+({IDENT})", re.IGNORECASE)
_NOT_ROLES = {"public", "current_user", "session_user", "current_role", "pg_database_owner"}


def unquote(ident: str) -> str:
    if ident.startswith('"') and ident.endswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def split_qname(qname: str, default_schema: str = "public") -> tuple[str, str]:
    parts = re.findall(IDENT, qname)
    if len(parts) >= 2:
        return unquote(parts[0]), unquote(parts[1])
    return default_schema, unquote(parts[0])


def roles_in(line: str) -> list[str]:
    """Role names a statement line refers to (owners, grantees, policy roles)."""
    found: list[str] = []
    patterns = (_OWNER, _GRANT_TO, _REVOKE_FROM, _POLICY_TO, _SET_ROLE, _DEFAULT_PRIVS)
    for pattern in (*patterns, _DEFAULT_PRIVS_TO):
        match = pattern.search(line)
        if match:
            found.extend(re.findall(IDENT, match.group(1)))
    match = _SESSION_AUTH.search(line)
    if match:
        found.append('"' + match.group(1).replace("''", "'").replace('"', '""') + '"')
    names = [unquote(r) for r in found]
    return [n for n in names if n.lower() not in _NOT_ROLES and not n.startswith("pg_")]


class PlainDeclarations:
    """Accumulates objects, roles and constraint heads while lines stream by."""

    def __init__(self) -> None:
        self.objects: list[DeclaredObject] = []
        self.roles: set[str] = set()
        self.creates_roles: set[str] = set()  # a pg_dumpall file makes its own roles
        self._current_table: str | None = None
        # Where unqualified names live: pg_dump before 10.3 wrote them unqualified after
        # "SET search_path = s, pg_catalog;" (see plain.scan_plain).
        self.schema = "public"

    def feed(self, line: str) -> None:
        if not line or line[0] in "-\n":
            return
        if line[0] == " " and self._current_table:
            match = _ADD_CONSTRAINT.match(line)
            if match:
                schema, table = split_qname(self._current_table, self.schema)
                kind = "FK CONSTRAINT" if match.group(2) == "FOREIGN KEY" else "CONSTRAINT"
                self.objects.append(
                    DeclaredObject(
                        kind=kind, namespace=schema, name=unquote(match.group(1)), table=table
                    )
                )
            return
        self._current_table = None
        self.roles.update(roles_in(line))
        if line.startswith("ALTER "):
            match = _ROW_SECURITY.match(line)
            if match:
                schema, table = split_qname(match.group(1), self.schema)
                self.objects.append(
                    DeclaredObject(kind="ROW SECURITY", namespace=schema, name=table, table=table)
                )
                return
            match = _ALTER_TABLE.match(line)
            if match:
                self._current_table = match.group(1)
            return
        if line[:7].upper() != "CREATE ":
            return
        match = _CREATE_ROLE.match(line)
        if match:
            self.creates_roles.add(unquote(match.group(1)))
            return
        for kind, pattern in _OBJECT_PATTERNS:
            match = pattern.match(line)
            if not match:
                continue
            if kind in ("INDEX", "POLICY"):
                schema, table = split_qname(match.group(2), self.schema)
                name = unquote(match.group(1))
                self.objects.append(
                    DeclaredObject(kind=kind, namespace=schema, name=name, table=table)
                )
            elif kind == "TRIGGER":
                on = _TRIGGER_ON.search(line)
                schema, table = split_qname(on.group(1), self.schema) if on else (self.schema, "")
                name = unquote(match.group(1))
                self.objects.append(
                    DeclaredObject(kind=kind, namespace=schema, name=name, table=table or None)
                )
            elif kind in ("EXTENSION", "SCHEMA"):
                name = unquote(match.group(1))
                self.objects.append(DeclaredObject(kind=kind, namespace=name, name=name))
            else:
                schema, name = split_qname(match.group(1), self.schema)
                self.objects.append(DeclaredObject(kind=kind, namespace=schema, name=name))
            return


_DEFN_NAMES = {
    "CONSTRAINT": re.compile(
        rf"ALTER TABLE (?:ONLY )?(?P<table>{QNAME})\s+ADD CONSTRAINT (?P<name>{IDENT}) "
    ),
    "TRIGGER": re.compile(
        rf"CREATE (?:CONSTRAINT )?TRIGGER (?P<name>{IDENT}) .*? ON (?P<table>{QNAME})", re.S
    ),
    "POLICY": re.compile(rf"CREATE POLICY (?P<name>{IDENT}) ON (?P<table>{QNAME})"),
}
_DEFN_NAMES["FK CONSTRAINT"] = _DEFN_NAMES["CONSTRAINT"]


def archive_declarations(toc: ArchiveToc) -> tuple[list[DeclaredObject], set[str], list[str]]:
    """Objects, roles and data tables of an archive, from its TOC."""
    objects: list[DeclaredObject] = []
    roles: set[str] = set()
    data_tables: list[str] = []
    for entry in toc.entries:
        if entry.owner and entry.owner.lower() not in _NOT_ROLES:
            roles.add(entry.owner)
        for line in (entry.defn or "").splitlines():
            roles.update(roles_in(line))
        schema = entry.namespace or "public"
        if entry.desc == "TABLE DATA":
            data_tables.append(f"{schema}.{entry.tag}")
            continue
        if entry.desc in ("INDEX", "TRIGGER", "POLICY", "CONSTRAINT", "FK CONSTRAINT"):
            # The tag is "<table> <name>", ambiguous when names hold spaces: read both
            # from the definition where it says them.
            table, _, name = entry.tag.partition(" ")
            defn = entry.defn or ""
            if entry.desc == "INDEX":
                match = re.search(rf" ON (?:ONLY )?({QNAME})", defn)
                table = split_qname(match.group(1))[1] if match else ""
                name = entry.tag
            elif match := _DEFN_NAMES[entry.desc].search(defn):
                table = split_qname(match.group("table"))[1]
                name = unquote(match.group("name"))
            objects.append(
                DeclaredObject(kind=entry.desc, namespace=schema, name=name or table, table=table)
            )
        elif entry.desc == "ROW SECURITY":
            objects.append(
                DeclaredObject(kind=entry.desc, namespace=schema, name=entry.tag, table=entry.tag)
            )
        elif entry.desc in ("FUNCTION", "PROCEDURE"):
            objects.append(
                DeclaredObject(kind=entry.desc, namespace=schema, name=entry.tag.split("(")[0])
            )
        elif entry.desc == "SCHEMA" and not (entry.defn or "").lstrip().startswith("CREATE"):
            continue  # pg_dump 11+: public's entry carries its comment and owner, not a CREATE
        elif entry.desc in ("EXTENSION", "SCHEMA"):
            objects.append(DeclaredObject(kind=entry.desc, namespace=entry.tag, name=entry.tag))
        elif entry.desc in ("TABLE", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "FOREIGN TABLE"):
            kind = "TABLE" if entry.desc == "FOREIGN TABLE" else entry.desc
            objects.append(DeclaredObject(kind=kind, namespace=schema, name=entry.tag))
    return objects, roles, data_tables
