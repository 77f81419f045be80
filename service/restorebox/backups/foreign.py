"""Files saved as backups that are not PostgreSQL backups, or not the bytes pg_dump wrote:
what each is, from its first bytes, and what to do instead. Each is refused before any
container starts, with the cause and the fix.

* other databases' dumps: MySQL's and MariaDB's ``mysqldump`` (version comments, backquoted
  names), SQLite's ``.dump`` (``PRAGMA foreign_keys=OFF; BEGIN TRANSACTION;``);
* pg_dump's own output instead of a dump: its help text, or only its error messages;
* a dump re-encoded to UTF-16 (PowerShell's ``>`` redirection writes UTF-16 text), SQL text
  and custom archives alike."""

from __future__ import annotations

import re

PG_DUMP_FIX = "dump again with `pg_dump -f FILE` (and -Fc for a custom archive)"

_MYSQL = (
    re.compile(r"^-- (MySQL|MariaDB) dump \d", re.M),
    re.compile(r"/\*!\d{5} "),  # MySQL's versioned comments: /*!40101 SET ... */
    re.compile(r"\) ENGINE=\w+"),
    re.compile(r"^(CREATE TABLE|DROP TABLE IF EXISTS|INSERT INTO|LOCK TABLES) `", re.M),
)
_SQLITE = re.compile(r"\A(\ufeff)?PRAGMA foreign_keys=OFF;\s*\n\s*BEGIN TRANSACTION;", re.I)
_HELP = re.compile(r"\A\s*pg_(dump|dumpall|restore) (dumps|extracts|restores) ")
_ERROR_ONLY = re.compile(r"\A\s*(pg_dump|pg_dumpall): error: (.*)")


def utf16(head: bytes) -> str | None:
    """``head`` decoded, when it is UTF-16 text (a byte-order mark, or every other byte NUL
    in text that is otherwise ASCII); None otherwise."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        # Without a mark: the NUL half of each character says the byte order.
        by_nul_half = {1: "utf-16-le", 0: "utf-16-be"}
        sample = head[:64]
        nuls = [half for half in (0, 1) if sample[half::2].count(0) == len(sample[half::2])]
        if len(head) < 8 or len(nuls) != 1 or not sample[1 - nuls[0] :: 2].isascii():
            return None
        encoding = by_nul_half[nuls[0]]
    usable = len(head) - len(head) % 2
    return head[:usable].decode(encoding, errors="replace")


def reencoded(name: str, head: bytes) -> str | None:
    """Why a UTF-16 file cannot be restored, or None when ``head`` is not UTF-16."""
    text = utf16(head)
    if text is None:
        return None
    if text.lstrip("\ufeff").startswith("PGDMP"):
        return (
            f"{name}: a custom archive re-encoded as UTF-16 text (PowerShell's `>` "
            "redirection does this): its bytes are no longer the archive pg_dump wrote and "
            f"cannot be restored; {PG_DUMP_FIX}"
        )
    return (
        f"{name}: SQL text re-encoded as UTF-16 (PowerShell's `>` redirection does this); "
        f"{PG_DUMP_FIX}, or convert the file back to UTF-8"
    )


def not_postgres(name: str, text: str) -> str | None:
    """What ``text`` (a file's decoded start) is when it is not a PostgreSQL backup at all;
    None when nothing says so."""
    if any(pattern.search(text) for pattern in _MYSQL):
        return (
            f"{name}: a MySQL/MariaDB dump (mysqldump), not a PostgreSQL backup; restore it "
            "into MySQL or MariaDB, or convert it to PostgreSQL first (pgloader)"
        )
    if _SQLITE.search(text):
        return (
            f"{name}: an SQLite dump (`.dump`), not a PostgreSQL backup; convert it to "
            "PostgreSQL first (pgloader reads SQLite databases)"
        )
    if _HELP.search(text):
        return (
            f"{name}: pg_dump's help text, not a backup (the command printed its usage: an "
            f"option it did not understand?); {PG_DUMP_FIX}"
        )
    error = _ERROR_ONLY.search(text)
    if error and not re.search(r"^(SET|CREATE|COPY|SELECT) ", text, re.M):
        return f"{name}: only pg_dump's error output, no backup: {error.group(2).strip()[:300]}"
    return None
