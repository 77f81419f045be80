"""Issue 3: every kind of pg_dump backup restores exactly, inside the sandbox."""

from __future__ import annotations

import gzip
import io
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from restorebox.probes.catalog import PROBES
from tests.conftest import THIRD_PARTY, Api, Manufacturing, copy_backup, query, row_counts
from tests.unit.backups.test_foreign import MYSQLDUMP, PG_DUMP, PG_DUMP_MESSAGES

pytestmark = pytest.mark.integration

SINGLE_FILE_VARIANTS = [
    ("manufacturing_complete.sql", "plain", "none", "15"),
    ("manufacturing_complete.sql.gz", "plain", "gzip", "15"),
    ("manufacturing_complete.sql.zst", "plain", "zstd", "15"),
    ("manufacturing_complete.sql.lz4", "plain", "lz4", "15"),
    ("manufacturing.dump", "custom", "gzip", "15"),
    ("manufacturing.dir", "directory", "gzip", "15"),
    ("manufacturing.tar", "tar", "none", "15"),
    ("manufacturing_pg17.sql", "plain", "none", "17"),
    ("manufacturing_pg17.dump", "custom", "gzip", "17"),
    ("manufacturing_pg17_zstd.dump", "custom", "zstd", "17"),
    ("manufacturing_pg17_lz4.dump", "custom", "lz4", "17"),
]


def assert_exact(sandbox: dict[str, Any], expected: dict[str, int]) -> None:
    assert sandbox["restore"]["errors"] == []
    assert row_counts(sandbox["connection_url"], list(expected)) == expected
    # A faithful restore passes every probe.
    assert {p["name"]: p["status"] for p in sandbox["probes"]} == dict.fromkeys(PROBES, "pass"), [
        p for p in sandbox["probes"] if p["status"] != "pass"
    ]
    assert sandbox["verdict"] == "pass"
    assert sandbox["restore"]["source_rows"] == expected


@pytest.mark.parametrize(("name", "fmt", "compression", "major"), SINGLE_FILE_VARIANTS)
def test_variant_restores_exactly(
    api: Api,
    backups_dir: Path,
    manufacturing: Manufacturing,
    name: str,
    fmt: str,
    compression: str,
    major: str,
) -> None:
    copy_backup(manufacturing.dir / name, backups_dir)
    described = api.backup(f"{name}")
    assert (described["format"], described["compression"], described["content"]) == (
        fmt,
        compression,
        "complete",
    )

    sandbox = api.create(backup=name)
    assert sandbox["postgres_version"] == major
    assert_exact(sandbox, manufacturing.counts)
    steps = sandbox["restore"]["steps"]
    assert [s["tool"] for s in steps] == ["psql" if fmt == "plain" else "pg_restore"]
    assert set(sandbox["restore"]["roles_created"]) >= {"anon", "authenticated", "service_role"}
    url = sandbox["connection_url"]
    # Durability settings used for the load are back to normal, triggers are on.
    assert query(url, "SHOW fsync") == [("on",)]
    assert query(
        url, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'"
    ) == [(0,)]
    assert query(url, "SELECT count(*) FROM pg_policies") == [(5,)]


@pytest.mark.parametrize(
    "data", ["manufacturing_data.sql", "manufacturing_data_inserts.sql", "manufacturing_data.dump"]
)
def test_schema_then_data_loads_circular_references_without_firing_triggers(
    api: Api, backups_dir: Path, manufacturing: Manufacturing, data: str
) -> None:
    copy_backup(manufacturing.dir / "manufacturing_schema.sql", backups_dir)
    copy_backup(manufacturing.dir / data, backups_dir)
    assert api.backup(f"{data}")["content"] == "data"
    assert api.backup("manufacturing_schema.sql")["content"] == "schema"

    sandbox = api.create(backup=["manufacturing_schema.sql", data])
    # activity_log equals the source: the insert trigger did not fire during the load.
    assert_exact(sandbox, manufacturing.counts)
    steps = sandbox["restore"]["steps"]
    assert [s["triggers_disabled"] for s in steps] == [False, True]
    url = sandbox["connection_url"]
    assert query(
        url, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'"
    ) == [(0,)]
    # Foreign keys are real again afterwards: a dangling reference is refused.
    with pytest.raises(Exception, match="foreign key"):
        query(
            url,
            "INSERT INTO public.messages (project_id, sender_id, body) VALUES "
            "(999999, gen_random_uuid(), 'x')",
        )


def test_pagila_schema_then_data(api: Api, backups_dir: Path) -> None:
    for name in ("pagila-schema.sql", "pagila-data.sql"):
        copy_backup(THIRD_PARTY / "pagila" / name, backups_dir)
    sandbox = api.create(backup=["pagila-schema.sql", "pagila-data.sql"])
    assert sandbox["restore"]["errors"] == []
    counts = row_counts(
        sandbox["connection_url"],
        ["public.film", "public.rental", "public.payment", "public.actor"],
    )
    assert counts == {
        "public.film": 1000,
        "public.rental": 16044,
        "public.payment": 16049,
        "public.actor": 200,
    }


def test_northwind_complete(api: Api, backups_dir: Path) -> None:
    copy_backup(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir)
    sandbox = api.create(backup="northwind.sql")
    assert sandbox["restore"]["errors"] == []
    # No version header: the default major (the newest configured).
    assert sandbox["postgres_version"] == str(api.settings.default_major())
    counts = row_counts(
        sandbox["connection_url"], ["public.orders", "public.order_details", "public.customers"]
    )
    assert counts == {"public.orders": 830, "public.order_details": 2155, "public.customers": 91}


def test_pg_dump_messages_at_the_top_are_skipped_and_reported(api: Api, backups_dir: Path) -> None:
    """`pg_dump ... > file 2>&1` puts pg_dump's warnings above the dump: a backup with noise
    at the top, restored exactly, the noise named in the report."""
    dump = (THIRD_PARTY / "northwind" / "northwind.sql").read_text()
    (backups_dir / "noisy.sql").write_text(PG_DUMP_MESSAGES + dump)
    sandbox = api.create(backup="noisy.sql")
    assert sandbox["restore"]["errors"] == []
    assert sandbox["verdict"] == "pass", sandbox["probes"]
    assert any("4 lines of pg_dump's own messages" in w for w in sandbox["restore"]["warnings"])
    assert row_counts(sandbox["connection_url"], ["public.orders"]) == {"public.orders": 830}


def test_pg17_dump_refused_for_postgres_15_before_any_container(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    copy_backup(manufacturing.dir / "manufacturing_pg17.dump", backups_dir)
    response = api.post("/v1/sandboxes", {"backup": "manufacturing_pg17.dump", "postgres": "15"})
    assert response.status_code == 422
    assert response.json()["code"] == "no_suitable_postgres"
    assert "17" in response.json()["message"]
    assert api.containers() == []


def test_no_image_new_enough_is_refused(
    make_api: Any, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    # A pg_dump 17 archive: pg_restore 15 cannot read its format, whatever the server.
    copy_backup(manufacturing.dir / "manufacturing_pg17.dump", backups_dir)
    with make_api(images={15: "restorebox/postgres:15"}) as api:
        response = api.post("/v1/sandboxes", {"backup": "manufacturing_pg17.dump"})
        assert response.status_code == 422
        assert response.json()["code"] == "no_suitable_postgres"
        assert api.containers() == []


def test_a_newer_plain_pg_dump_than_any_image_is_translated_not_refused(
    make_api: Any, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    # pg_dump 17 of a 15 server, plain: PostgreSQL 15's psql loads it once what only 17
    # knows (SET transaction_timeout) is commented out, and the report says so.
    copy_backup(manufacturing.dir / "manufacturing_pg17.sql", backups_dir)
    with make_api(images={15: "restorebox/postgres:15"}) as api:
        sandbox = api.create(backup="manufacturing_pg17.sql")
        assert sandbox["postgres_version"] == "15"
        assert sandbox["verdict"] == "pass", sandbox["probes"]
        warnings = " ".join(sandbox["restore"]["warnings"])
        assert "transaction_timeout" in warnings
        assert sandbox["restore"]["source_rows"] == manufacturing.counts


# -- bad input ---------------------------------------------------------------------------


def test_unknown_backup_is_404(api: Api) -> None:
    response = api.post("/v1/sandboxes", {"backup": "missing.sql"})
    assert response.status_code == 404
    assert response.json()["code"] == "backup_not_found"


@pytest.mark.parametrize("name", ["../secret.sql", "/etc/passwd", "a/../../x", "link-out.sql"])
def test_names_cannot_escape_the_backups_folder(
    api: Api, backups_dir: Path, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "secret.sql"
    outside.write_text("SELECT 1;\n")
    (backups_dir / "link-out.sql").symlink_to(outside)
    response = api.post("/v1/sandboxes", {"backup": name})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_backup_name"
    assert api.containers() == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (os.urandom(4096), "not a pg_dump backup"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        # Not PostgreSQL at all, though named like a dump: refused before any container.
        (gzip.compress(MYSQLDUMP.encode()), "MySQL/MariaDB"),
        (PG_DUMP.encode("utf-16"), "UTF-16"),
    ],
)
def test_unreadable_files_are_422(api: Api, backups_dir: Path, content: bytes, needle: str) -> None:
    (backups_dir / "bad.sql").write_bytes(content)
    response = api.post("/v1/sandboxes", {"backup": "bad.sql"})
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_backup"
    assert needle in response.json()["message"]
    assert api.containers() == []


def test_truncated_archive_fails_precisely(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    data = (manufacturing.dir / "manufacturing.dump").read_bytes()
    (backups_dir / "truncated.dump").write_bytes(data[: int(len(data) * 0.6)])
    response = api.post("/v1/sandboxes", {"backup": "truncated.dump", "wait": True})
    if response.status_code == 422:  # cut inside the table of contents
        assert response.json()["code"] == "unsupported_backup"
    else:
        sandbox = response.json()
        assert sandbox["status"] == "failed"
        assert sandbox["error"]["code"] == "restore_failed"
        assert sandbox["restore"]["errors"]
    assert api.containers() == []


def test_syntax_error_stops_with_line_number(api: Api, backups_dir: Path) -> None:
    (backups_dir / "broken.sql").write_text(
        "CREATE TABLE ok (id int);\nINSERT INTO ok VALUES (1);\nCREAT TABLE nope (id int);\n"
        "CREATE TABLE after (id int);\n"
    )
    sandbox = api.create(expect="failed", backup="broken.sql")
    assert sandbox["error"]["code"] == "restore_failed"
    assert "line 3" in sandbox["error"]["message"]
    error = sandbox["restore"]["errors"][0]
    assert error["line"] == 3
    assert "syntax error" in error["message"]
    assert "CREAT TABLE nope" in error["statement"]
    assert api.containers() == []


def test_on_error_continue_restores_the_rest_and_reports_every_error(
    api: Api, backups_dir: Path
) -> None:
    (backups_dir / "broken.sql").write_text(
        "CREATE TABLE ok (id int);\nCREAT TABLE nope (id int);\nINSERT INTO missing VALUES (1);"
        "\nINSERT INTO ok VALUES (1), (2);\n"
    )
    sandbox = api.create(backup="broken.sql", on_error="continue", probes="none")
    assert [e["line"] for e in sandbox["restore"]["errors"]] == [2, 3]
    assert query(sandbox["connection_url"], "SELECT count(*) FROM ok") == [(2,)]


def test_a_dump_that_never_ends_times_out_and_is_removed(make_api: Any, backups_dir: Path) -> None:
    (backups_dir / "forever.sql").write_text("CREATE TABLE t (id int);\nSELECT pg_sleep(3600);\n")
    with make_api(restore_timeout_seconds=4) as api:
        started = time.monotonic()
        sandbox = api.create(expect="failed", backup="forever.sql")
        assert time.monotonic() - started < 60
        assert sandbox["error"]["code"] == "restore_timeout"
        assert api.containers() == []


def test_shell_escape_in_a_dump_never_reaches_the_host(api: Api, backups_dir: Path) -> None:
    marker = f"/tmp/restorebox-escape-{uuid.uuid4().hex}"
    (backups_dir / "evil.sql").write_text(
        f"CREATE TABLE t (id int);\n\\! touch {marker}\n\\o {marker}.out\nSELECT 1;\n\\o\n"
        f"COPY (SELECT 1) TO PROGRAM 'touch {marker}.program';\nINSERT INTO t VALUES (1);\n"
    )
    warnings = api.backup("evil.sql")["warnings"]
    assert any("\\!" in w for w in warnings)
    sandbox = api.create(backup="evil.sql", on_error="continue", probes="none")
    assert not Path(marker).exists()
    assert not Path(f"{marker}.out").exists()
    assert not Path(f"{marker}.program").exists()
    assert query(sandbox["connection_url"], "SELECT count(*) FROM t") == [(1,)]


def test_progress_is_visible_while_restoring(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    slow = backups_dir / "slow.sql"
    body = (manufacturing.dir / "manufacturing_complete.sql").read_text()
    slow.write_text("SELECT pg_sleep(4);\n" + body)
    response = api.post("/v1/sandboxes", {"backup": "slow.sql"})
    sandbox_id = response.json()["id"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = api.get(f"/v1/sandboxes/{sandbox_id}").json()
        if current["progress"]:
            seen.append(current["progress"])
        if current["status"] not in ("creating", "restoring", "probing"):
            break
        time.sleep(0.3)
    assert current["status"] == "ready"
    restoring = [p for p in seen if p["phase"] == "restoring"]
    assert restoring, seen
    assert restoring[-1]["bytes_total"] == slow.stat().st_size
    assert restoring[-1]["file"] == "slow.sql"
    assert 0 < restoring[-1]["bytes_done"] <= restoring[-1]["bytes_total"]


def _wrap(source: Path, target: Path, kind: str, junk: bool = True) -> None:
    """Wrap a dump as people do: tar/tar.gz/zip of a -Fd folder or of one file, with
    macOS's AppleDouble files beside (as Finder's archives carry them)."""
    import tarfile
    import zipfile

    files = sorted(source.rglob("*")) if source.is_dir() else [source]
    base = source.parent
    if kind == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.relative_to(base).as_posix())
            if junk:
                archive.writestr(f"__MACOSX/{source.name}/._toc.dat", b"\0\5\26\7 junk")
        return
    with tarfile.open(target, "w:gz" if kind == "tar.gz" else "w") as archive:
        archive.add(source, arcname=source.name)
        if junk:
            junk_bytes = b"\0\5\26\7junk!"
            info = tarfile.TarInfo(f"._{source.name}")
            info.size = len(junk_bytes)
            archive.addfile(info, io.BytesIO(junk_bytes))


@pytest.mark.parametrize(
    ("inner", "kind", "fmt"),
    [
        ("manufacturing.dir", "tar", "directory"),
        ("manufacturing.dir", "tar.gz", "directory"),
        ("manufacturing.dir", "zip", "directory"),
        ("manufacturing_complete.sql", "zip", "plain"),
        ("manufacturing.dump", "tar.gz", "custom"),
    ],
)
def test_wrapped_dumps_restore_exactly(
    api: Api, backups_dir: Path, manufacturing: Manufacturing, inner: str, kind: str, fmt: str
) -> None:
    name = f"wrapped-{inner}.{kind}"
    _wrap(manufacturing.dir / inner, backups_dir / name, kind)
    described = api.backup(name)
    assert (described["format"], described["content"]) == (fmt, "complete")
    assert any(kind in w for w in described["warnings"])
    sandbox = api.create(backup=name)
    assert_exact(sandbox, manufacturing.counts)


def test_unsafe_or_ambiguous_wrappers_are_refused(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    import tarfile

    with tarfile.open(backups_dir / "link.tar", "w") as archive:
        archive.add(manufacturing.dir / "manufacturing.dir", arcname="dump")
        link = tarfile.TarInfo("dump/3001.dat.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        archive.addfile(link)
    with tarfile.open(backups_dir / "two.tar", "w") as archive:
        archive.add(manufacturing.dir / "manufacturing.dir", arcname="a")
        archive.add(manufacturing.dir / "manufacturing.dir", arcname="b")
    for name, words in (("link.tar", "link or special file"), ("two.tar", "2 directory")):
        response = api.post("/v1/sandboxes", {"backup": name})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "unsupported_backup"
        assert words in response.json()["message"]
    assert api.containers() == []


@pytest.mark.parametrize(
    ("name", "counted"),
    [
        ("manufacturing.dump", True),  # gzip
        ("manufacturing_pg17_zstd.dump", True),
        ("manufacturing_pg17.dump", True),
        ("manufacturing.dir", True),
        ("manufacturing_pg17_lz4.dump", True),
        ("manufacturing.tar", False),
    ],
)
def test_archive_rows_are_counted_in_the_describing_pass(
    manufacturing: Manufacturing, name: str, counted: bool
) -> None:
    from restorebox.backups.describe import describe

    backup = describe(name, manufacturing.dir / name)
    assert backup.row_counts == (manufacturing.counts if counted else None)


def test_a_damaged_archive_data_area_leaves_counting_to_the_sandbox(
    manufacturing: Manufacturing, tmp_path: Path
) -> None:
    from restorebox.backups.describe import describe

    data = bytearray((manufacturing.dir / "manufacturing.dump").read_bytes())
    # Garble the last quarter (data blocks), keep the table of contents.
    start = len(data) * 3 // 4
    data[start:] = bytes(b ^ 0x5A for b in data[start:])
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(bytes(data))
    backup = describe("damaged.dump", damaged)
    assert backup.row_counts is None
    assert backup.format == "custom"
