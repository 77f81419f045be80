"""Translate what a newer pg_dump wrote into what an older psql and server can run.

Used when no configured image has client tools as new as the pg_dump that wrote a plain
file (see ``plan``). Each rule is a sed expression over whole lines that keeps line
numbers (a translated line becomes a comment), and a note for the restore report."""

from __future__ import annotations

import re
from dataclasses import dataclass

from restorebox.backups.model import Backup, major_of
from restorebox.platforms.profiles import Profile


@dataclass(frozen=True)
class Rule:
    since: int  # the major that introduced what the rule removes (0: no server accepts it)
    sed: str
    note: str


# A newer pg_dump can copy a server's internal column options into the dump as
# "ALTER COLUMN ... SET (pg_attver=...)", which no server accepts on restore.
INTERNAL_OPTIONS = "pg_attver="
ALWAYS = [
    Rule(
        0,
        r"s/^(ALTER TABLE ONLY .* ALTER COLUMN .* SET \(pg_attver=[0-9]+\);)$/-- restorebox:"
        r" a server-internal column option: \1/",
        "server-internal column options (pg_attver) commented out",
    ),
]
RULES = [
    Rule(
        17,
        r"s/^(SET transaction_timeout = .*)$/-- restorebox: not for this server: \1/",
        "SET transaction_timeout (PostgreSQL 17+) commented out",
    ),
]


# Files that make their own databases: the maintenance database is never dropped or
# made again (the sandbox's server needs it), whatever a pg_dumpall --clean says.
MAINTENANCE = [
    Rule(
        0,
        r'/^DROP DATABASE (IF EXISTS )?"?(postgres|template0|template1)"?( WITH \(FORCE\))?;$/'
        r"s/^/-- restorebox: the maintenance database stays: /",
        "DROP DATABASE of the maintenance database skipped",
    ),
    Rule(
        0,
        r'/^CREATE DATABASE "?(postgres|template0|template1)"? /'
        r"s/^/-- restorebox: the maintenance database exists: /",
        "CREATE DATABASE of the maintenance and template databases skipped (they exist)",
    ),
]
# A --clean dump without --if-exists drops what a fresh sandbox does not have yet: its
# preamble drops constraints ("ALTER TABLE ONLY t DROP CONSTRAINT c"), column defaults
# ("ALTER TABLE t ALTER COLUMN c DROP DEFAULT") and then the objects. Each is made what
# pg_dump --if-exists would have written.
CLEAN = Rule(
    0,
    "\n".join(
        (
            r'/^DROP /{/ IF EXISTS /!s/^DROP ([A-Z]+( [A-Z]+)*) ("|[a-z_])/DROP \1 IF EXISTS \3/}',
            r"/^ALTER TABLE ONLY .* DROP CONSTRAINT .+;$/{/ IF EXISTS /!"
            r"s/^ALTER TABLE ONLY (.*) DROP CONSTRAINT (.+);$/"
            r"ALTER TABLE IF EXISTS ONLY \1 DROP CONSTRAINT IF EXISTS \2;/}",
            r"/^ALTER TABLE .* ALTER COLUMN .* DROP DEFAULT;$/{/^ALTER TABLE IF EXISTS /!"
            r"s/^ALTER TABLE /ALTER TABLE IF EXISTS /}",
        )
    ),
    "DROP statements of a --clean dump made IF EXISTS (the sandbox starts empty)",
)
# pg_dump before 11 wrote "CREATE SCHEMA public;", which fails on every newer server (the
# schema exists). Harmless, but psql's ON_ERROR_STOP and pg_restore's --exit-on-error end
# the load there: the statement is made what it means, so nothing tolerated stops a load.
PUBLIC_SCHEMA = Rule(
    0,
    r"s/^CREATE SCHEMA public;$/CREATE SCHEMA IF NOT EXISTS public;/",
    "CREATE SCHEMA public (pg_dump before 11) made IF NOT EXISTS (every server has it)",
)
# pg_dumpall writes "CREATE ROLE x;" then "ALTER ROLE x WITH ...". A role that exists
# already (made by a platform profile, by an earlier file, or the server's own) is an
# error pg_dumpall's docs call harmless, yet it ends a load: the CREATE is made to pass
# over an existing role, and the ALTER that follows sets its attributes either way.
ROLES = Rule(
    0,
    r'/^CREATE ROLE ("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*);$/s/^CREATE ROLE (.+);$/'
    r"DO $restorebox$ BEGIN CREATE ROLE \1; EXCEPTION WHEN duplicate_object THEN NULL; "
    r"END $restorebox$;/",
    "CREATE ROLE of a role the sandbox already has passes over it (its ALTER ROLE still applies)",
)
# No security label provider is loaded in a sandbox (pgsodium's transparent column
# encryption, PostgreSQL Anonymizer, sepgsql label columns), so every SECURITY LABEL
# fails. The labels are commented out; archives use pg_restore --no-security-labels.
SECURITY_LABELS = Rule(
    0,
    # A range (/start/,/end/) would run on to the next statement when the label ends on
    # its first line (as pg_dump writes it): its lines are joined up to the ";" instead.
    "/^SECURITY LABEL FOR /{\n:a\n/;$/!{\nN\nba\n}\n"
    "s/^/-- restorebox: no label provider in a sandbox: /\n"
    "s/\\n/\\n-- restorebox: no label provider in a sandbox: /g\n}",
    "SECURITY LABEL statements skipped (no label provider is loaded in a sandbox)",
)
# Locales restorebox's images have; a dump asking for another gets the closest.
IMAGE_LOCALES = {"c", "posix", "c.utf-8", "c.utf8", "en_us.utf-8", "en_us.utf8"}


def locale_rules(locales: list[str]) -> list[Rule]:
    rules = []
    for locale in locales:
        if locale.lower() in IMAGE_LOCALES:
            continue
        closest = "en_US.UTF-8" if locale.lower().replace("-", "").endswith("utf8") else "C"
        pattern = re.escape(locale).replace("/", r"\/")
        rules.append(
            Rule(
                0,
                rf"/^CREATE DATABASE /s/'{pattern}'/'{closest}'/g",
                f"locale {locale} is not in the image: {closest} used (the closest it has)",
            )
        )
    return rules


def _ident(name: str) -> str:
    """A sed (-E) pattern for an identifier as pg_dump writes it: quoted or not."""
    return '"?' + re.escape(name).replace("/", r"\/") + '"?'


def _make_way(qname: str) -> str:
    """One line of SQL that drops a stand-in's view (leaving its extension first)."""
    return (
        "DO $restorebox$ DECLARE owner text; BEGIN"
        " SELECT x.extname INTO owner FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid"
        f" WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass('{qname}')"
        " AND d.deptype = 'e';"
        f" IF owner IS NOT NULL THEN EXECUTE format('ALTER EXTENSION %I DROP VIEW {qname}', owner);"
        f" END IF; DROP VIEW IF EXISTS {qname}; END $restorebox$;"
    )


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
        target = rf"{_ident(schema)}\.{_ident(name)}"
        made = {
            # A view cannot be replaced by one whose columns differ in type or collation
            # (the dump's often does): the stand-in's is taken out of its extension and
            # dropped, on the same line, so the dump's own CREATE VIEW makes it anew.
            "VIEW": (rf"CREATE VIEW ({target} AS)$", _make_way(qname) + r" CREATE VIEW \1"),
            "FUNCTION": (rf"CREATE FUNCTION ({target}\(.*)$", r"CREATE OR REPLACE FUNCTION \1"),
            "TABLE": (rf"CREATE TABLE ({target} \(.*)$", r"CREATE TABLE IF NOT EXISTS \1"),
        }.get(kind)
        if made is not None:
            rules.append(
                Rule(
                    0,
                    f"s/^{made[0]}/{made[1]}/",
                    f"{kind.lower()} {qname} is made by the platform's extension too: the "
                    "dump's definition replaces the stand-in's",
                )
            )
    grantors = "|".join(sorted(re.escape(r.name) for r in profile.roles))
    if backup.creates_roles or backup.cluster_dump:
        # A platform role granted these memberships on the platform; in a sandbox it has
        # no ADMIN OPTION on the file's roles, so the grant is made by the restoring user.
        rules.append(
            Rule(
                0,
                rf'/^GRANT /s/ GRANTED BY "?({grantors})"?;$/;/',
                f"GRANTED BY a {profile.name} platform role dropped from role grants (the "
                "platform's roles hold no ADMIN OPTION in a sandbox)",
            )
        )
    return rules


def rules_for(backup: Backup, major: int, profile: Profile | None = None) -> list[Rule]:
    """The rules a backup needs to load into ``major``'s psql and server. Plain files
    always pass through them; an archive only when its TOC shows it needs one (it is then
    restored as ``pg_restore -f - | sed | psql``, serially)."""
    written_by = major_of(backup.pg_dump_version) or 0
    needed = [rule for rule in RULES if major < rule.since <= written_by]
    if backup.internal_options:
        needed += ALWAYS
    creates_public = any(o.kind == "SCHEMA" and o.name == "public" for o in backup.objects)
    if creates_public and 0 < written_by < 11:
        needed.append(PUBLIC_SCHEMA)
    if backup.format != "plain":
        # pg_restore writes SQL for its own server: only what no server accepts, and what
        # the platform's stand-ins need, send an archive through sed (security labels:
        # pg_restore --no-security-labels).
        needed = [r for r in needed if r in ALWAYS or r is PUBLIC_SCHEMA]
        return needed + platform_rules(backup, profile)
    needed += platform_rules(backup, profile)
    if backup.databases:
        needed += MAINTENANCE + locale_rules(backup.locales)
    if backup.clean:
        needed.append(CLEAN)
    if backup.creates_roles:
        needed.append(ROLES)
    if backup.security_labels:
        needed.append(SECURITY_LABELS)
    return needed


def notes_for(backup: Backup, major: int, profile: Profile | None = None) -> list[str]:
    """What the restore report says was changed on the way in."""
    notes = [rule.note for rule in rules_for(backup, major, profile)]
    if backup.format != "plain" and backup.security_labels:
        notes.append(SECURITY_LABELS.note)  # pg_restore --no-security-labels
    return notes
