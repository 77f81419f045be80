"""Files saved as backups that are not PostgreSQL backups, or no longer the bytes pg_dump
wrote: refused when described (before any container), naming what they are and the fix.
The fixtures follow each tool's documented output shapes; they are our own."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from restorebox.backups import Catalog
from restorebox.errors import UnsupportedBackup

MYSQLDUMP = """-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: localhost    Database: shop
-- ------------------------------------------------------
-- Server version\t8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET TIME_ZONE='+00:00' */;

--
-- Table structure for table `customers`
--

DROP TABLE IF EXISTS `customers`;
CREATE TABLE `customers` (
  `id` int NOT NULL AUTO_INCREMENT,
  `email` varchar(255) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;

LOCK TABLES `customers` WRITE;
INSERT INTO `customers` VALUES (1,'a@example.com'),(2,'b@example.com');
UNLOCK TABLES;
"""
MARIADB_COMPACT = """/*!40101 SET @saved_cs_client     = @@character_set_client */;
CREATE TABLE `orders` (
  `id` int(11) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=Aria DEFAULT CHARSET=utf8mb4;
INSERT INTO `orders` VALUES (1),(2);
"""
SQLITE = """PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes VALUES(1,'hello');
COMMIT;
"""
PG_DUMP = """--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
CREATE TABLE public.notes (id integer NOT NULL, body text);
COPY public.notes (id, body) FROM stdin;
1\thello
\\.
"""
HELP = """pg_dump dumps a database as a text file or to other formats.

Usage:
  pg_dump [OPTION]... [DBNAME]
"""
ERROR = (
    'pg_dump: error: connection to server at "db.example.com" (10.0.0.5), port 5432 '
    'failed: FATAL:  password authentication failed for user "postgres"\n'
)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("dump.sql", MYSQLDUMP.encode(), ["MySQL/MariaDB", "pgloader"]),
        ("dump.sql.gz", gzip.compress(MYSQLDUMP.encode()), ["MySQL/MariaDB"]),
        ("compact.sql", MARIADB_COMPACT.encode(), ["MySQL/MariaDB"]),
        ("app.sql", SQLITE.encode(), ["SQLite", "pgloader"]),
        ("backup.sql", HELP.encode(), ["help text", "pg_dump -f FILE"]),
        ("backup.sql", ERROR.encode(), ["error output", "password authentication failed"]),
        # PowerShell's `pg_dump ... > backup.sql` writes UTF-16 with a byte-order mark.
        ("backup.sql", PG_DUMP.encode("utf-16"), ["UTF-16", "PowerShell", "pg_dump -f FILE"]),
        ("backup.sql", PG_DUMP.encode("utf-16-le"), ["UTF-16"]),
        ("backup.sql.gz", gzip.compress(PG_DUMP.encode("utf-16")), ["UTF-16"]),
        ("backup.dump", "PGDMP\x01\x0f\x00".encode("utf-16"), ["custom archive", "UTF-16"]),
    ],
)
def test_what_is_not_a_postgres_backup_is_named_with_its_fix(
    catalog: Catalog, tmp_path: Path, name: str, data: bytes, says: list[str]
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(UnsupportedBackup) as refused:
        catalog.get(name)
    for words in says:
        assert words in refused.value.message
    assert refused.value.message.startswith(f"{name}: ")


def test_a_real_dump_is_not_mistaken_for_one(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "ok.sql").write_text(PG_DUMP)
    assert catalog.get("ok.sql").format == "plain"


# What pg_dump prints on stderr for a data-only dump of tables with circular foreign keys
# (PostgreSQL 15+ message shapes), redirected into the file with `2>&1`.
PG_DUMP_MESSAGES = (
    "pg_dump: warning: there are circular foreign-key constraints on this table:\n"
    "pg_dump: detail: orders\n"
    "pg_dump: hint: You might not be able to restore the dump without using "
    "--disable-triggers or temporarily dropping the constraints.\n"
    "pg_dump: hint: Consider using a full dump instead of a --data-only dump to avoid this "
    "problem.\n"
)


def test_pg_dump_messages_at_the_top_are_noise_to_skip_and_report(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "noisy.sql").write_text(PG_DUMP_MESSAGES + PG_DUMP)
    backup = catalog.get("noisy.sql")
    assert (backup.format, backup.content, backup.tool_messages) == ("plain", "complete", 4)
    assert any("4 lines of pg_dump's own messages" in w for w in backup.warnings)
    assert backup.data_tables == ["public.notes"]


def test_a_custom_archive_with_messages_written_into_it_is_refused(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "noisy.dump").write_bytes(PG_DUMP_MESSAGES.encode() + b"PGDMP\x01\x0f\x00")
    with pytest.raises(UnsupportedBackup, match="pg_dump -Fc -f FILE"):
        catalog.get("noisy.dump")
