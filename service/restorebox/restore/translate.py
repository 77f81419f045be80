"""Translate what a newer pg_dump wrote into what an older psql and server can run.

Used when no configured image has client tools as new as the pg_dump that wrote a plain
file (see ``plan``). Each rule is a sed expression over whole lines that keeps line
numbers (a translated line becomes a comment), and a note for the restore report."""

from __future__ import annotations

from dataclasses import dataclass

from ..backups.model import Backup, major_of


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


def rules_for(backup: Backup, major: int) -> list[Rule]:
    """The rules a backup needs to load into ``major``'s psql and server. Plain files
    always pass through them; an archive only when its TOC shows it needs one (it is then
    restored as ``pg_restore -f - | sed | psql``, serially)."""
    written_by = major_of(backup.pg_dump_version) or 0
    needed = [rule for rule in RULES if major < rule.since <= written_by]
    if backup.format == "plain":
        return needed + (ALWAYS if backup.internal_options else [])
    if backup.internal_options:
        return needed + ALWAYS
    return []
