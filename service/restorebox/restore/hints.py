"""What to do about common restore errors: one sentence a person can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HintContext:
    backup: str
    data_only_alone: bool  # a data-only file with no schema step before it
    major: int


# Constructs that arrived in a given major: a file whose header claims an older server
# but uses them gets told which major it needs.
NEWER_CONSTRUCTS: list[tuple[re.Pattern[str], str, int]] = [
    (re.compile(r"function (pg_catalog\.)?uuidv7\("), "uuidv7()", 18),
    (re.compile(r'syntax error at or near "VIRTUAL"'), "VIRTUAL generated columns", 18),
    (
        re.compile(r"function (pg_catalog\.)?pg_restore_(relation|attribute)_stats"),
        "statistics import",
        18,
    ),
    (re.compile(r'syntax error at or near "JSON_TABLE"'), "JSON_TABLE", 17),
    (
        re.compile(r'unrecognized configuration parameter "transaction_timeout"'),
        "transaction_timeout",
        17,
    ),
    (re.compile(r"function (pg_catalog\.)?any_value\("), "any_value()", 16),
]


def hint_for(message: str, ctx: HintContext) -> str | None:
    text = message.lower()
    for pattern, construct, major in NEWER_CONSTRUCTS:
        if major > ctx.major and pattern.search(message):
            return (
                f"{construct} needs PostgreSQL {major} or newer, whatever the file's header "
                f'says; ask for it ("postgres": "{major}")'
            )
    if "tables declared with oids are not supported" in text:
        return (
            "tables WITH OIDS (PostgreSQL 11 and older): PostgreSQL 12 removed them, and "
            "the sandboxes are 15 and newer; in the source, ALTER TABLE ... SET WITHOUT OIDS "
            "and dump again"
        )
    if "invalid input syntax for type money" in text:
        return (
            "money values are written in the source's lc_monetary format; the sandbox's "
            "differs: dump them as numeric (ALTER COLUMN ... TYPE numeric) or restore into "
            "a server with the source's locale"
        )
    if text.startswith("copy failed for table") and "does not exist" in text:
        return (
            "a function the table's constraints, defaults or triggers call names a relation "
            "without its schema: pg_dump loads with an empty search_path, so qualify the "
            "name in the function (or give it SET search_path) in the source and dump again"
        )
    if re.search(r'could not access file "[^"]*(postgis|rtpostgis|topology)[^"]*"', message):
        return (
            "a PostGIS database dumped before PostGIS was an extension (its functions name "
            "the old server's library files): restore it with PostGIS's postgis_restore.pl, "
            "or dump it again after upgrading it to CREATE EXTENSION postgis"
        )
    if re.search(r'type "(public\.)?vector" does not exist', message):
        return (
            "vector is pgvector's type: the dump must CREATE EXTENSION vector first, and the "
            f"PostgreSQL {ctx.major} image must have pgvector (restorebox's 17 and 18 do)"
        )
    if ctx.data_only_alone and (
        "does not exist" in text and ("relation" in text or "schema" in text)
    ):
        return (
            f"{ctx.backup} holds only data: restore the schema first, e.g. "
            f'"backup": ["app_schema.sql", "{ctx.backup}"]'
        )
    match = re.search(r'extension "([^"]+)" (?:is not available|does not exist)', message)
    if match or "could not open extension control file" in text:
        name = match.group(1) if match else _control_file_name(message)
        return (
            f"extension {name} is not installed in the PostgreSQL {ctx.major} image: use an "
            "image that provides it (RESTOREBOX_IMAGES), or a platform profile that stands "
            "in for it"
        )
    match = re.search(r'unrecognized configuration parameter "([^"]+)"', message)
    if match:
        return (
            f"the dump sets {match.group(1)}, which PostgreSQL {ctx.major} does not know: it "
            'was written by a newer pg_dump; ask for a newer server ("postgres": "17")'
        )
    if "invalid locale name" in text or ("locale" in text and "not found" in text):
        return "the image lacks this locale; restorebox images carry C.UTF-8 and en_US.UTF-8"
    match = re.search(r'role "([^"]+)" does not exist', message)
    if match:
        return (
            f"role {match.group(1)} is used but never named where restorebox looks "
            "(owners, grants, policies); create it first or restore a globals dump before"
        )
    return None


def _control_file_name(message: str) -> str:
    match = re.search(r"/([^/\"]+)\.control", message)
    return match.group(1) if match else "(unknown)"
