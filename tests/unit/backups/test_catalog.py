from __future__ import annotations

import gzip
import hashlib
import os
import time
from pathlib import Path

import lz4.frame
import pytest
import zstandard

from restorebox.backups import Backup, Catalog
from restorebox.backups.archive import read_toc
from restorebox.errors import (
    BackupNotFound,
    InvalidBackupName,
    RestoreboxError,
    UnsupportedBackup,
)

PLAIN = b"""--
-- PostgreSQL database dump
--

-- Dumped from database version 15.4
-- Dumped by pg_dump version 16.2

SET statement_timeout = 0;
CREATE TABLE public.t (id integer NOT NULL);
ALTER TABLE public.t OWNER TO app_owner;
CREATE POLICY p ON public.t FOR SELECT TO anon, "Weird Role" USING (true);
GRANT SELECT ON TABLE public.t TO authenticated;
COPY public.t (id) FROM stdin;
\\N
CREATE TABLE not_really (x int);
\\.
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path)


def test_plain_dump_is_described_from_its_content(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "weird-name.bin").write_bytes(PLAIN)
    backup = catalog.get("weird-name.bin")
    assert (backup.format, backup.compression, backup.content) == ("plain", "none", "complete")
    assert backup.source_server_version == "15.4"
    assert backup.pg_dump_version == "16.2"
    assert (backup.source_server_version, backup.pg_dump_version) == ("15.4", "16.2")
    assert set(backup.roles) == {"app_owner", "anon", "Weird Role", "authenticated"}
    # A line inside COPY data is data, never a declaration.
    assert [o.name for o in backup.objects if o.kind == "TABLE"] == ["t"]
    assert backup.data_tables == ["public.t"]
    assert len(backup.sha256) == 64


@pytest.mark.parametrize(
    ("compress", "expected"),
    [
        (gzip.compress, "gzip"),
        (lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
        (lz4.frame.compress, "lz4"),
    ],
)
def test_compressed_plain_dumps(catalog: Catalog, tmp_path: Path, compress, expected) -> None:  # type: ignore[no-untyped-def]
    data = compress(PLAIN)
    (tmp_path / "dump.sql").write_bytes(data)
    backup = catalog.get("dump.sql")
    assert (backup.format, backup.compression, backup.content) == ("plain", expected, "complete")
    # The checksum is taken in the same pass as the scan: it must still be the file's.
    assert backup.sha256 == hashlib.sha256(data).hexdigest()
    assert backup.size_bytes == len(data)


def test_checksum_of_an_uncompressed_dump(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "dump.sql").write_bytes(PLAIN)
    assert catalog.get("dump.sql").sha256 == hashlib.sha256(PLAIN).hexdigest()


def test_corruption_after_the_first_block_is_a_clear_error(
    catalog: Catalog, tmp_path: Path
) -> None:
    body = PLAIN + b"-- padding\n" * 20000
    data = bytearray(zstandard.ZstdCompressor().compress(body))
    data[len(data) // 2 :] = os.urandom(len(data) - len(data) // 2)
    (tmp_path / "bad.sql.zst").write_bytes(bytes(data))
    with pytest.raises(UnsupportedBackup):
        catalog.get("bad.sql.zst")


def test_schema_only_and_data_only(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "s.sql").write_bytes(b"--\nCREATE TABLE a (id int);\n")
    (tmp_path / "d.sql").write_bytes(b"--\nCOPY public.a (id) FROM stdin;\n1\n\\.\n")
    assert catalog.get("s.sql").content == "schema"
    assert catalog.get("d.sql").content == "data"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02" * 100, "not a pg_dump backup"),
        (b"PGDMP\x01\x10", "truncated"),
        (gzip.compress(b"\x00binary\x00"), "not a SQL dump"),
    ],
)
def test_unreadable(catalog: Catalog, tmp_path: Path, data: bytes, message: str) -> None:
    (tmp_path / "x").write_bytes(data)
    with pytest.raises(UnsupportedBackup, match=message):
        catalog.get("x")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "a\\b"])
def test_names_that_escape_are_refused(catalog: Catalog, name: str) -> None:
    with pytest.raises(InvalidBackupName):
        catalog.resolve(name)


def test_symlink_out_is_refused_and_symlink_in_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    root.mkdir()
    outside = tmp_path / "outside.sql"
    outside.write_bytes(PLAIN)
    (root / "out.sql").symlink_to(outside)
    (root / "real.sql").write_bytes(PLAIN)
    (root / "alias.sql").symlink_to(root / "real.sql")
    catalog = Catalog(root)
    with pytest.raises(InvalidBackupName):
        catalog.resolve("out.sql")
    assert catalog.get("alias.sql").format == "plain"
    with pytest.raises(BackupNotFound):
        catalog.resolve("missing.sql")


def settled(catalog: Catalog) -> tuple[list[Backup], list[RestoreboxError], list[str]]:
    """The listing once background inspection has finished."""
    deadline = time.monotonic() + 10
    while True:
        good, bad, pending = catalog.list()
        if not pending or time.monotonic() > deadline:
            return good, bad, pending
        time.sleep(0.02)


def test_listing_includes_directories_and_reports_unreadable(tmp_path: Path) -> None:
    (tmp_path / "good.sql").write_bytes(PLAIN)
    (tmp_path / "bad.sql").write_bytes(os.urandom(100) + b"\x00")
    (tmp_path / "dirdump").mkdir()
    (tmp_path / "dirdump" / "toc.dat").write_bytes(b"PGDMP")
    names = Catalog(tmp_path).names()
    assert names == ["bad.sql", "dirdump", "good.sql"]
    catalog = Catalog(tmp_path)
    good, bad, pending = catalog.list()
    assert (good, bad, sorted(pending)) == ([], [], names)  # first look: inspected later
    good, bad, pending = settled(catalog)
    assert [b.name for b in good] == ["good.sql"]
    assert sorted(e.details["name"] for e in bad) == ["bad.sql", "dirdump"]


def test_one_unreadable_entry_never_breaks_the_listing(tmp_path: Path) -> None:
    (tmp_path / "good.sql").write_bytes(PLAIN)
    (tmp_path / "dangling.sql").symlink_to(tmp_path / "nowhere.sql")
    os.mkfifo(tmp_path / "pipe.sql")
    good, bad, _ = settled(Catalog(tmp_path))
    assert [b.name for b in good] == ["good.sql"]
    assert {e.details["name"]: e.code for e in bad} == {
        "dangling.sql": "backup_not_found",
        "pipe.sql": "unsupported_backup",
    }


def test_directory_members_must_stay_inside_and_be_regular_files(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    (root / "dump").mkdir(parents=True)
    (root / "dump" / "toc.dat").write_bytes(b"PGDMP")
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (root / "dump" / "3001.dat").symlink_to(secret)
    with pytest.raises(InvalidBackupName, match=r"3001\.dat.*outside"):
        Catalog(root).get("dump")
    (root / "dump" / "3001.dat").unlink()
    os.mkfifo(root / "dump" / "3001.dat")
    with pytest.raises(UnsupportedBackup, match="not a regular file"):
        Catalog(root).get("dump")


def test_size_limit_is_checked_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restorebox.backups import catalog as module
    from restorebox.errors import BackupTooLarge

    (tmp_path / "big.sql").write_bytes(PLAIN)

    def never(*_: object) -> None:
        raise AssertionError("the backup was read")

    monkeypatch.setattr(module, "describe", never)
    with pytest.raises(BackupTooLarge):
        Catalog(tmp_path, max_bytes=100).known("big.sql")


def test_descriptions_are_remembered_across_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restorebox.backups import catalog as module

    root = tmp_path / "backups"
    root.mkdir()
    (root / "a.sql").write_bytes(PLAIN)
    (root / "bad.sql").write_bytes(b"\x00" * 10)
    cache = tmp_path / "state" / "backups.sqlite3"
    first = Catalog(root, cache_file=cache)
    described = first.get("a.sql")
    with pytest.raises(UnsupportedBackup):
        first.get("bad.sql")
    first.close()

    def never(*_: object) -> None:
        raise AssertionError("described again")

    monkeypatch.setattr(module, "describe", never)
    second = Catalog(root, cache_file=cache)
    assert second.known("a.sql") == described
    with pytest.raises(UnsupportedBackup):
        second.known("bad.sql")
    (root / "a.sql").write_bytes(PLAIN + b"-- changed\n")  # a changed file is read again
    monkeypatch.undo()
    assert second.get("a.sql").sha256 != described.sha256


def test_archive_header_newer_than_known_is_refused() -> None:
    import io

    with pytest.raises(UnsupportedBackup, match="newer"):
        read_toc(io.BytesIO(b"PGDMP\x01\x63\x00\x04\x08\x01"), "future.dump")


def test_backups_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    from restorebox.errors import BackupTooLarge

    (tmp_path / "big.sql").write_bytes(PLAIN)
    with pytest.raises(BackupTooLarge, match="over the limit"):
        Catalog(tmp_path, max_bytes=100).get("big.sql")


def test_files_that_make_databases_are_described_per_database(tmp_path: Path) -> None:
    (tmp_path / "all.sql").write_text(
        "--\n-- PostgreSQL database cluster dump\n--\n"
        "CREATE ROLE app_owner;\n"
        "\\connect template1\n"
        "CREATE DATABASE small WITH TEMPLATE = template0 LOCALE = 'fr_FR.UTF-8';\n"
        "\\connect -reuse-previous=on \"dbname='small'\"\n"
        "CREATE TABLE public.a (id int);\nCOPY public.a (id) FROM stdin;\n1\n\\.\n"
        'CREATE DATABASE "Big Data";\n'
        '\\connect "Big Data"\n'
        "CREATE TABLE public.b (id int);\nALTER TABLE public.b OWNER TO app_owner;\n"
        "COPY public.b (id) FROM stdin;\n1\n2\n3\n\\.\n"
    )
    backup = Catalog(tmp_path).get("all.sql")
    assert backup.databases == ["small", "Big Data"]
    assert backup.main_database == "Big Data"  # the one holding the most rows
    assert backup.row_counts == {"public.b": 3}
    assert backup.per_database["small"].row_counts == {"public.a": 1}
    assert backup.locales == ["fr_FR.UTF-8"]
    assert "app_owner" not in backup.roles  # the file creates it itself
