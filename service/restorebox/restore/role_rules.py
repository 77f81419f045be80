"""Rules about who: roles a dump makes, grants and their grantors, the owners of what only
a superuser may own, and the sandbox's own superusers, which no dump may touch."""

from __future__ import annotations

import re

from restorebox.restore.rule import Rule
from restorebox.sql.lexer import Statement
from restorebox.sql.rewrite import IDENT, IF_EXISTS, head, skipped

# pg_dumpall writes "CREATE ROLE x;" then "ALTER ROLE x WITH ...". A role that exists
# already (made by a platform profile, by an earlier file, or the server's own) is an
# error pg_dumpall's docs call harmless, yet it ends a load: the CREATE is made to pass
# over an existing role, and the ALTER that follows sets its attributes either way.
_CREATE_ROLE = head(
    rf"CREATE (?P<kind>ROLE|USER|GROUP) (?P<name>{IDENT})(?P<options>(?:\s+[^;]*)?);"
)
# CREATE ROLE options ALTER ROLE does not take: with them, an existing role is left be.
_NOT_FOR_ALTER = re.compile(r"\b(?:IN\s+ROLE|IN\s+GROUP|ROLE|ADMIN|USER|SYSID)\b", re.I)


def _create_role_if_missing(statement: Statement) -> str | None:
    """CREATE ROLE (USER, GROUP) of a role the sandbox has already: its attributes are
    set with ALTER ROLE instead, as the CREATE would have made them."""
    match = _CREATE_ROLE.match(statement)
    if match is None:
        return None
    text = statement.text
    name = text[match.start("name") : match.end("name")]
    options = text[match.start("options") : match.end("options")].strip()
    if options[:4].upper() == "WITH":
        options = options[4:].lstrip()
    implied = {"USER": "LOGIN ", "GROUP": "NOLOGIN "}.get(match.group("kind").upper(), "")
    if _NOT_FOR_ALTER.search(options) or not (options or implied):
        instead = "NULL;"
    else:
        instead = f"ALTER ROLE {name} WITH {implied}{options};"
    tag = "$restorebox$" if "$restorebox$" not in text else "$restorebox_role$"
    return (
        f"DO {tag} BEGIN {text[: match.end()]} EXCEPTION WHEN duplicate_object THEN "
        f"{instead} END {tag};"
    )


ROLES = Rule(
    0,
    _create_role_if_missing,
    "CREATE ROLE of a role the sandbox already has passes over it (its ALTER ROLE still applies)",
)
# Role grants and privileges GRANTED BY a role: in a sandbox that role holds no ADMIN
# OPTION on the file's roles (PostgreSQL 16 refuses it), so the restoring superuser
# grants them; the grant is the same, its recorded grantor is not.
_GRANT = head(r"GRANT\b")
_GRANTED_BY = re.compile(rf"\s+GRANTED\s+BY\s+(?:{IDENT})\s*;\s*$", re.IGNORECASE)


def _without_granted_by(statement: Statement) -> str | None:
    if not _GRANT.match(statement):
        return None
    match = _GRANTED_BY.search(statement.code)
    return statement.text[: match.start()] + ";" if match else None


GRANTED_BY = Rule(
    0,
    _without_granted_by,
    "GRANTED BY dropped from grants: the restoring superuser grants them (the grantor "
    "holds no ADMIN OPTION in a sandbox)",
)


def guard_roles(users: list[str]) -> Rule:
    """No dump may drop, rename or demote the sandbox's own superuser (pg_dumpall files
    carry role statements; a hostile plain file might too), nor the image's bootstrap
    superuser (a dump of a restorebox sandbox names it). A statement about them is
    skipped, however it is spelled (case, quotes, spaces, CURRENT_USER); a DROP of
    several roles drops the others."""
    protected = set(users)
    about = head(
        rf"(?P<verb>CREATE|ALTER|DROP) (?:ROLE|USER|GROUP)(?P<if>{IF_EXISTS})? "
        rf"(?P<names>{IDENT}(?:\s*,\s*{IDENT})*)"
    )

    def is_protected(name: str) -> bool:
        if name.startswith('"'):
            return name[1:-1].replace('""', '"') in protected
        return name.lower() in protected | {"current_user", "session_user", "current_role"}

    def rewrite(statement: Statement) -> str | None:
        match = about.match(statement)
        if match is None:
            return None
        text = statement.text
        names = re.findall(IDENT, text[match.start("names") : match.end("names")])
        kept = [n for n in names if not is_protected(n)]
        if len(kept) == len(names):
            return None
        if match.group("verb").upper() != "DROP" or not kept:
            return skipped(statement, "the sandbox's own superuser is left as it is")
        return f"{text[: match.start('names')]}{', '.join(kept)}{text[match.end('names') :]}"

    return Rule(0, rewrite, "statements about the sandbox's own superuser skipped")


# An event trigger's or a foreign-data wrapper's owner must be a superuser, a server's
# must hold USAGE on its wrapper (granted later in the dump): a role restorebox made up
# for the dump (NOLOGIN, no superuser) cannot own them. The OWNER TO is tried; where the
# role may not, the object stays the restoring superuser's and the restore says so.
_OWNER_TO = head(
    r"ALTER (?P<kind>EVENT TRIGGER|FOREIGN DATA WRAPPER|SERVER|(?:PROCEDURAL )?LANGUAGE) "
    rf"(?P<name>{IDENT}) OWNER TO (?P<owner>{IDENT})\s*;"
)
OWNER_NOTE = "restorebox: "  # how psql's WARNING lines from these fallbacks begin


def _owner_or_fallback(statement: Statement) -> str | None:
    match = _OWNER_TO.match(statement)
    if match is None:
        return None
    text = statement.text
    what = f"{match.group('kind').lower()} {text[match.start('name') : match.end('name')]}"
    owner = text[match.start("owner") : match.end("owner")]
    tag = "$restorebox$" if "$restorebox$" not in text else "$restorebox_owner$"
    note = (
        f"{OWNER_NOTE}{what} stays owned by the restoring superuser: {owner} may not own it "
        "(its owner must be a superuser, or hold a privilege the dump grants later)"
    ).replace("'", "''")
    return (
        f"DO {tag} BEGIN {text[: match.end()]} EXCEPTION WHEN insufficient_privilege THEN "
        f"RAISE WARNING '%', '{note}'; END {tag};"
    )


SUPERUSER_OWNED = Rule(
    0,
    _owner_or_fallback,
    "objects only a superuser may own: OWNER TO tried, the restoring superuser kept where "
    "the role may not (named in the warnings)",
)
