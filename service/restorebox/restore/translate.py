"""Rewrite what a dump says into what a sandbox's psql and server can run.

Each rule is a statement rewrite (``sql.rewrite``: it sees whole statements, never what a
literal, a body, a comment or COPY data holds) and a note for the restore report. Plain
files always pass through the rules they need; an archive only when its TOC shows it
needs one (its SQL then streams ``pg_restore -f -`` -> the rules -> psql)."""

from __future__ import annotations

import re

from restorebox.backups.model import Backup, major_of
from restorebox.platforms.profiles import Profile
from restorebox.restore.role_rules import GRANTED_BY, ROLES, SUPERUSER_OWNED
from restorebox.restore.rule import Rule
from restorebox.sql.lexer import Statement
from restorebox.sql.rewrite import (
    IDENT,
    IF_EXISTS,
    QNAME,
    Head,
    Rewrite,
    chain,
    head,
    insert_after,
    skip_when,
)

# A newer pg_dump can copy a server's internal column options into the dump as
# "ALTER COLUMN ... SET (pg_attver=...)", which no server accepts on restore.
INTERNAL_OPTIONS = "pg_attver="
ALWAYS = [
    Rule(
        0,
        skip_when(
            r"ALTER TABLE .* ALTER (?:COLUMN )?.* SET \s*\(\s*pg_attver\s*=",
            "a server-internal column option",
        ),
        "server-internal column options (pg_attver) commented out",
    ),
]
RULES = [
    Rule(
        17,
        skip_when(r"SET (?:SESSION |LOCAL )?transaction_timeout\b", "not for this server"),
        "SET transaction_timeout (PostgreSQL 17+) commented out",
    ),
]


# Files that make their own databases: the maintenance database is never dropped or
# made again (the sandbox's server needs it), whatever a pg_dumpall --clean says.
_MAINTENANCE = r'(?:"?(?:postgres|template0|template1)"?)'
MAINTENANCE = [
    Rule(
        0,
        skip_when(
            rf"DROP DATABASE (?:IF EXISTS )?{_MAINTENANCE}\s*(?:WITH\s*\(\s*FORCE\s*\)\s*)?;",
            "the maintenance database stays",
        ),
        "DROP DATABASE of the maintenance database skipped",
    ),
    Rule(
        0,
        skip_when(rf"CREATE DATABASE {_MAINTENANCE}(?![A-Za-z0-9_$])", "the database exists"),
        "CREATE DATABASE of the maintenance and template databases skipped (they exist)",
    ),
]
# A --clean dump without --if-exists drops what a fresh sandbox does not have yet: its
# preamble drops constraints ("ALTER TABLE ONLY t DROP CONSTRAINT c"), column defaults
# ("ALTER TABLE t ALTER COLUMN c DROP DEFAULT") and then the objects. Each is made what
# pg_dump --if-exists would have written, where that one puts IF EXISTS.
DROPPED_KINDS = (
    "ACCESS METHOD",
    "AGGREGATE",
    "CAST",
    "COLLATION",
    "CONVERSION",
    "DATABASE",
    "DOMAIN",
    "EVENT TRIGGER",
    "EXTENSION",
    "FOREIGN DATA WRAPPER",
    "FOREIGN TABLE",
    "FUNCTION",
    "GROUP",
    "INDEX",
    "LANGUAGE",
    "MATERIALIZED VIEW",
    "OPERATOR CLASS",
    "OPERATOR FAMILY",
    "OPERATOR",
    "POLICY",
    "PROCEDURAL LANGUAGE",
    "PROCEDURE",
    "PUBLICATION",
    "ROLE",
    "ROUTINE",
    "RULE",
    "SCHEMA",
    "SEQUENCE",
    "SERVER",
    "STATISTICS",
    "SUBSCRIPTION",
    "TABLE",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH PARSER",
    "TEXT SEARCH TEMPLATE",
    "TRANSFORM",
    "TRIGGER",
    "TYPE",
    "USER MAPPING",
    "USER",
    "VIEW",
)
_KINDS = "|".join(sorted(DROPPED_KINDS, key=len, reverse=True))
_DROP_CONSTRAINT = head(
    rf"ALTER (?:FOREIGN )?TABLE(?P<t>)(?P<tif>{IF_EXISTS})?(?:\s+ONLY)? {QNAME} "
    rf"DROP CONSTRAINT(?P<c>)(?P<cif>{IF_EXISTS})?\s"
)


def _drop_constraint(statement: Statement) -> str | None:
    """ALTER TABLE [ONLY] t DROP CONSTRAINT c: IF EXISTS after TABLE and CONSTRAINT."""
    match = _DROP_CONSTRAINT.match(statement)
    if match is None or (match.group("tif") and match.group("cif")):
        return None
    text = statement.text
    if not match.group("cif"):
        text = f"{text[: match.end('c')]} IF EXISTS{text[match.end('c') :]}"
    if not match.group("tif"):
        text = f"{text[: match.end('t')]} IF EXISTS{text[match.end('t') :]}"
    return text


CLEAN = Rule(
    0,
    chain(
        # "DROP USER MAPPING FOR", "DROP CAST (", "DROP TRANSFORM FOR": after the kind.
        insert_after(rf"DROP (?:{_KINDS})(?![A-Za-z0-9_$])", " IF EXISTS", IF_EXISTS),
        _drop_constraint,
        insert_after(
            rf"ALTER (?:FOREIGN )?TABLE(?=(?:\s+ONLY)? {QNAME} ALTER (?:COLUMN )?{IDENT} "
            r"DROP DEFAULT\s*;)",
            " IF EXISTS",
            IF_EXISTS,
        ),
    ),
    "DROP statements of a --clean dump made IF EXISTS (the sandbox starts empty)",
)
# pg_dump before 11 wrote "CREATE SCHEMA public;", which fails on every newer server (the
# schema exists). Harmless, but psql's ON_ERROR_STOP and pg_restore's --exit-on-error end
# the load there: the statement is made what it means, so nothing tolerated stops a load.
PUBLIC_SCHEMA = Rule(
    0,
    insert_after(r'CREATE SCHEMA(?=\s+(?:public|"public")\s*;)', " IF NOT EXISTS"),
    "CREATE SCHEMA public (pg_dump before 11) made IF NOT EXISTS (every server has it)",
)
# No security label provider is loaded in a sandbox (pgsodium's transparent column
# encryption, PostgreSQL Anonymizer, sepgsql label columns), so every SECURITY LABEL
# fails. The labels are skipped; archives use pg_restore --no-security-labels.
SECURITY_LABELS = Rule(
    0,
    skip_when(r"SECURITY LABEL\b", "no label provider in a sandbox"),
    "SECURITY LABEL statements skipped (no label provider is loaded in a sandbox)",
)
_SET_TABLESPACE = head(r"SET default_tablespace\s*(?:=|TO)\s*(?P<value>[^;]*);")
_DATABASE_TABLESPACE = re.compile(rf"\s+TABLESPACE\s*=?\s*{IDENT}", re.IGNORECASE)
_CREATE_DATABASE = head(r"CREATE DATABASE\b")


def _default_tablespace(statement: Statement) -> str | None:
    match = _SET_TABLESPACE.match(statement)
    if match is None or match.group("value").strip() in ("''", "pg_default", "DEFAULT"):
        return None
    return "SET default_tablespace = '';"


def _database_tablespace(statement: Statement) -> str | None:
    if not _CREATE_DATABASE.match(statement):
        return None
    match = _DATABASE_TABLESPACE.search(statement.code)
    if match is None:
        return None
    return statement.text[: match.start()] + statement.text[match.end() :]


# A sandbox has no tablespaces (their directories are the source host's): every object
# goes to the default one. Archives: pg_restore --no-tablespaces.
_NO_TABLESPACES = "no tablespaces in a sandbox"
TABLESPACES = Rule(
    0,
    chain(
        skip_when(r"(?:CREATE|ALTER|DROP) TABLESPACE\b", _NO_TABLESPACES),
        skip_when(r"COMMENT ON TABLESPACE\b", _NO_TABLESPACES),
        skip_when(r"(?:GRANT|REVOKE) .* ON TABLESPACE\b", _NO_TABLESPACES),
        skip_when(r"ALTER DATABASE .* SET TABLESPACE\b", _NO_TABLESPACES),
        _default_tablespace,
        _database_tablespace,
    ),
    "tablespaces left out: every object is in the sandbox's default tablespace",
)
# A database made in another encoding needs a locale of that encoding: the sandbox's
# default (C.UTF-8) is UTF-8 only. "ENCODING 'LATIN1'" with no locale gets C, which
# takes every encoding, from template0.
_ENCODING = re.compile(r"\bENCODING\s*=?\s*'?([A-Za-z0-9_-]+)'?", re.IGNORECASE)
_LOCALE_GIVEN = re.compile(r"\b(?:LOCALE|LC_COLLATE|LC_CTYPE)\b", re.IGNORECASE)


def _locale_for_encoding(statement: Statement) -> str | None:
    if not _CREATE_DATABASE.match(statement) or _LOCALE_GIVEN.search(statement.code):
        return None
    match = _ENCODING.search(statement.text)
    if match is None or match.group(1).upper().replace("-", "") in ("UTF8", "UNICODE"):
        return None
    text = statement.text.rstrip().removesuffix(";")
    template = "" if re.search(r"\bTEMPLATE\b", statement.code, re.I) else " TEMPLATE template0"
    return f"{text} LOCALE 'C'{template};"


ENCODED_DATABASES = Rule(
    0,
    _locale_for_encoding,
    "databases made in an encoding other than UTF-8 with no locale get the C locale "
    "(from template0), which takes every encoding",
)
# plpgsql is in every database: hand-written and old files make it without IF NOT EXISTS.
PLPGSQL = Rule(
    0,
    chain(
        insert_after(r'CREATE EXTENSION(?=\s+"?plpgsql"?\b)', " IF NOT EXISTS", IF_EXISTS),
        insert_after(
            r'CREATE(?= (?:TRUSTED )?(?:PROCEDURAL )?LANGUAGE "?plpgsql"?\s*;)', " OR REPLACE"
        ),
    ),
    "CREATE EXTENSION / LANGUAGE plpgsql made to pass over the one every database has",
)
# Locales restorebox's images have; a dump asking for another gets the closest.
IMAGE_LOCALES = {"c", "posix", "c.utf-8", "c.utf8", "en_us.utf-8", "en_us.utf8"}


def _replace_literal(head: Head, old: str, new: str) -> Rewrite:
    """In statements matching ``head``, every string literal ``'old'`` becomes ``'new'``."""
    quoted, replacement = f"'{old}'", f"'{new}'"

    def rewrite(statement: Statement) -> str | None:
        if not head.match(statement):
            return None
        text = statement.text
        spans = [s for s in statement.spans if s[2] == "string" and text[s[0] : s[1]] == quoted]
        for start, end, _ in reversed(spans):
            text = text[:start] + replacement + text[end:]
        return text if spans else None

    return rewrite


def locale_rules(locales: list[str]) -> list[Rule]:
    rules = []
    for locale in locales:
        if locale.lower() in IMAGE_LOCALES:
            continue
        closest = "en_US.UTF-8" if locale.lower().replace("-", "").endswith("utf8") else "C"
        rules.append(
            Rule(
                0,
                _replace_literal(_CREATE_DATABASE, locale, closest),
                f"locale {locale} is not in the image: {closest} used (the closest it has)",
            )
        )
    return rules


def _ident(name: str) -> str:
    """A pattern for an identifier as pg_dump writes it: quoted or not."""
    return f'(?:"{re.escape(name)}"|{re.escape(name)})'


def _make_way(qname: str) -> str:
    """One statement that drops a stand-in's view (leaving its extension first)."""
    return (
        "DO $restorebox$ DECLARE owner text; BEGIN"
        " SELECT x.extname INTO owner FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid"
        f" WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass('{qname}')"
        " AND d.deptype = 'e';"
        f" IF owner IS NOT NULL THEN EXECUTE format('ALTER EXTENSION %I DROP VIEW {qname}', owner);"
        f" END IF; DROP VIEW IF EXISTS {qname}; END $restorebox$;"
    )


def _prefix(pattern: str, prefix: str) -> Rewrite:
    compiled = head(pattern)

    def rewrite(statement: Statement) -> str | None:
        return prefix + " " + statement.text if compiled.match(statement) else None

    return rewrite


def platform_rules(backup: Backup, profile: Profile | None) -> list[Rule]:
    """What a platform's dump needs in a sandbox whose stand-ins already made some of its
    objects, and whose grants name platform roles as grantors."""
    if profile is None:
        return []
    rules = []
    declared = {f"{o.kind} {o.namespace}.{o.name}" for o in backup.objects}
    for provided in sorted(profile.provided & declared):
        kind, _, qname = provided.partition(" ")
        schema, _, name = qname.partition(".")
        target = rf"{_ident(schema)}\s*\.\s*{_ident(name)}"
        made: Rewrite | None = {
            # A view cannot be replaced by one whose columns differ in type or collation
            # (the dump's often does): the stand-in's is taken out of its extension and
            # dropped, on the same line, so the dump's own CREATE VIEW makes it anew.
            "VIEW": _prefix(rf"CREATE VIEW {target} AS\b", _make_way(qname)),
            "FUNCTION": insert_after(rf"CREATE(?P<at>)(?= FUNCTION {target}\s*\()", " OR REPLACE"),
            "TABLE": insert_after(rf"CREATE TABLE(?P<at>)(?= {target}\s*\()", " IF NOT EXISTS"),
        }.get(kind)
        if made is not None:
            rules.append(
                Rule(
                    0,
                    made,
                    f"{kind.lower()} {qname} is made by the platform's extension too: the "
                    "dump's definition replaces the stand-in's",
                )
            )
    return rules


# pgcrypto before 1.3 made gen_random_uuid() in its own schema; since PostgreSQL 13 it is
# the server's own (pg_catalog) and pgcrypto makes none: a dump from a database whose
# pgcrypto was never updated names public.gen_random_uuid(), which a new CREATE EXTENSION
# does not make. The call is made to the server's own, the same function.
_QUALIFIED_UUID = re.compile(rf"{IDENT}\s*\.\s*gen_random_uuid\s*\(\s*\)")
_USES_UUID = head(r"(?:CREATE|ALTER)\b")


def _core_gen_random_uuid(statement: Statement) -> str | None:
    if b"gen_random_uuid" not in statement.data or not _USES_UUID.match(statement):
        return None
    found = [m for m in _QUALIFIED_UUID.finditer(statement.code) if "pg_catalog" not in m.group()]
    text = statement.text
    for match in reversed(found):
        text = f"{text[: match.start()]}pg_catalog.gen_random_uuid(){text[match.end() :]}"
    return text if found else None


GEN_RANDOM_UUID = Rule(
    0,
    _core_gen_random_uuid,
    "gen_random_uuid() of an old pgcrypto's schema is called as the server's own "
    "(pg_catalog, PostgreSQL 13 and later; pgcrypto 1.3 makes none)",
)


# What every plain file passes through: each rule changes only the statements it is
# for, and the report names only those that changed something.
PLAIN_ALWAYS = [GRANTED_BY, TABLESPACES, ENCODED_DATABASES, PLPGSQL, GEN_RANDOM_UUID]


def creates_public(backup: Backup) -> bool:
    return any(o.kind == "SCHEMA" and o.name == "public" for o in backup.objects)


def rules_for(backup: Backup, major: int, profile: Profile | None = None) -> list[Rule]:
    """The rules a backup needs to load into ``major``'s psql and server. Plain files
    always pass through them; an archive only when its TOC shows it needs one (it is then
    restored as ``pg_restore -f -`` -> the rules -> psql, serially)."""
    written_by = major_of(backup.pg_dump_version) or 0
    needed = [rule for rule in RULES if major < rule.since <= written_by]
    if backup.internal_options:
        needed += ALWAYS
    # pg_dump before 11 always wrote it; a newer one where the source's public schema was
    # dropped and made again. A sandbox has it: plain files make theirs IF NOT EXISTS;
    # pg_restore finds the sandbox's empty one dropped first (restore/runner).
    if creates_public(backup) and backup.format == "plain":
        needed.append(PUBLIC_SCHEMA)
    if backup.superuser_owned:
        needed.append(SUPERUSER_OWNED)
    if backup.format != "plain":
        # pg_restore writes SQL for its own server: only what no server accepts, and what
        # the platform's stand-ins need, send an archive through the rules (security labels:
        # pg_restore --no-security-labels).
        kept = (*ALWAYS, PUBLIC_SCHEMA, SUPERUSER_OWNED)
        needed = [r for r in needed if r in kept]
        return needed + platform_rules(backup, profile)
    needed += platform_rules(backup, profile)
    needed += PLAIN_ALWAYS
    # A cluster dump may drop and make the maintenance and template databases even when
    # it holds no other database (pg_dumpall --clean of a bare cluster).
    if backup.databases or backup.cluster_dump or backup.clean:
        needed += MAINTENANCE
    if backup.databases:
        needed += locale_rules(backup.locales)
    if backup.clean:
        needed.append(CLEAN)
    if backup.creates_roles:
        needed.append(ROLES)
    if backup.security_labels:
        needed.append(SECURITY_LABELS)
    return needed


def notes_for(backup: Backup, major: int, profile: Profile | None = None) -> list[str]:
    """What the restore report says is changed on the way in whatever the dump holds
    (the rules' own notes come from what they changed: ``Applied``)."""
    if backup.format != "plain" and backup.security_labels:
        return [SECURITY_LABELS.note]  # pg_restore --no-security-labels
    return []
