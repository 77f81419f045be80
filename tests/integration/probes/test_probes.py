"""Issue 4: probes catch exactly what is wrong, and only that."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, Manufacturing, copy_backup, exec_in_sandbox

pytestmark = pytest.mark.integration


def statuses(sandbox: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["status"] for p in sandbox["probes"]}


def probe(sandbox: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in sandbox["probes"] if p["name"] == name)


def only_this_is_not_passing(sandbox: dict[str, Any], name: str, status: str) -> None:
    others = {k: v for k, v in statuses(sandbox).items() if k != name}
    assert set(others.values()) == {"pass"}, [
        p for p in sandbox["probes"] if p["name"] != name and p["status"] != "pass"
    ]
    assert statuses(sandbox)[name] == status, probe(sandbox, name)


def test_orphans_from_a_careless_source_are_found(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    copy_backup(manufacturing.dir / "manufacturing_schema.sql", backups_dir)
    copy_backup(manufacturing.dir / "damaged_orphans_data.sql", backups_dir)
    sandbox = api.create(backup=["manufacturing_schema.sql", "damaged_orphans_data.sql"])
    only_this_is_not_passing(sandbox, "fk_orphans", "fail")
    assert sandbox["verdict"] == "fail"
    orphans = {
        (o["table"], o["constraint"]): o["count"]
        for o in probe(sandbox, "fk_orphans")["data"]["orphans"]
    }
    # Projects 1 and 2 are gone: messages and approvals of those projects are orphans.
    assert orphans == {
        ("public.approvals", "approvals_project_id_fkey"): 4,
        ("public.messages", "messages_project_id_fkey"): 13,
    }
    assert "public.messages.messages_project_id_fkey: 13" in probe(sandbox, "fk_orphans")["detail"]


def test_schema_only_file_presented_as_complete_warns(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    name = "factory_pulse_complete_backup_20250902_214058.sql"
    shutil.copyfile(manufacturing.dir / "manufacturing_schema.sql", backups_dir / name)
    assert api.backup(f"{name}")["content"] == "schema"
    sandbox = api.create(backup=name)
    only_this_is_not_passing(sandbox, "empty_data", "warn")
    assert sandbox["verdict"] == "warn"
    assert "only the schema" in probe(sandbox, "empty_data")["detail"]


def test_sequence_behind_its_data_is_caught(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    """The backup's own setval leaves the sequence behind: the restore is faithful, and
    the probe warns that production collides too (issue 27: probes judge the restore;
    a restore that loses a setval fails, see restore/test_dump_classes)."""
    copy_backup(manufacturing.dir / "damaged_sequence_lag.sql", backups_dir)
    sandbox = api.create(backup="damaged_sequence_lag.sql")
    only_this_is_not_passing(sandbox, "sequence_lag", "warn")
    assert "as in the source" in probe(sandbox, "sequence_lag")["detail"]
    behind = probe(sandbox, "sequence_lag")["data"]["behind"]
    assert behind == [
        {
            "sequence": "public.messages_id_seq",
            "column": "public.messages.id",
            "sequence_value": 5,
            "column_max": 400,
            "as_in_source": True,
        }
    ]


def test_truncated_archive_reports_entries_never_loaded(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    data = (manufacturing.dir / "manufacturing.dump").read_bytes()
    (backups_dir / "cut.dump").write_bytes(data[: int(len(data) * 0.8)])
    sandbox = api.create(expect="failed", backup="cut.dump", keep_on_failure=False)
    report = api.get(f"/v1/sandboxes/{sandbox['id']}/report").json()
    assert report["error"]["code"] == "restore_failed"
    assert report["restore"]["not_loaded"], report["restore"]
    assert set(report["restore"]["not_loaded"]) <= set(manufacturing.counts)
    assert api.containers() == []


def test_probe_selection_and_assertions(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    copy_backup(manufacturing.dir / "manufacturing.dump", backups_dir)
    sandbox = api.create(
        backup="manufacturing.dump",
        probes=["row_parity"],
        assertions=[
            {"name": "five orgs", "sql": "select count(*) = 5 from public.organizations"},
            {"name": "wrong", "sql": "select count(*) = 6 from public.organizations"},
            {"name": "writes refused", "sql": "delete from public.activity_log returning true"},
            {"name": "broken", "sql": "select nope"},
        ],
    )
    assert statuses(sandbox) == {
        "row_parity": "pass",
        "assertion:five orgs": "pass",
        "assertion:wrong": "fail",
        "assertion:writes refused": "fail",
        "assertion:broken": "fail",
    }
    assert "read-only" in probe(sandbox, "assertion:writes refused")["detail"]
    assert sandbox["verdict"] == "fail"

    none = api.create(backup="manufacturing.dump", probes="none")
    assert none["probes"] is None
    assert none["verdict"] is None

    response = api.post("/v1/sandboxes", {"backup": "manufacturing.dump", "probes": ["nope"]})
    assert response.status_code == 422
    assert "nope" in response.json()["message"]


def test_report_endpoint_has_restore_and_probes(
    api: Api, backups_dir: Path, manufacturing: Manufacturing
) -> None:
    copy_backup(manufacturing.dir / "manufacturing_complete.sql", backups_dir)
    sandbox = api.create(backup="manufacturing_complete.sql")
    report = api.get(f"/v1/sandboxes/{sandbox['id']}/report").json()
    assert report["verdict"] == "pass"
    assert len(report["probes"]) == len(sandbox["probes"]) >= 13
    for result in report["probes"]:
        assert result["description"]
        assert result["duration_seconds"] >= 0
    amcheck = next(p for p in report["probes"] if p["name"] == "amcheck")
    assert amcheck["data"]["indexes_checked"] == amcheck["data"]["indexes"] > 10
    assert report["restore"]["steps"][0]["tool"] == "psql"


SHAPES = """
CREATE EXTENSION amcheck;
CREATE TABLE measurements (id int, taken date NOT NULL, v int, PRIMARY KEY (id, taken))
    PARTITION BY RANGE (taken);
CREATE TABLE measurements_2024 PARTITION OF measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO measurements SELECT g, date '2024-06-01' + (g % 400), g
    FROM generate_series(1, 1000) g;
CREATE TABLE animals (id int PRIMARY KEY, name text);
CREATE TABLE cats (lives int) INHERITS (animals);
INSERT INTO animals VALUES (1, 'generic');
INSERT INTO cats VALUES (2, 'tom', 9), (3, 'felix', 9);
CREATE TABLE "order items" (id int PRIMARY KEY, "unit price" numeric);
INSERT INTO "order items" SELECT g, g * 1.5 FROM generate_series(1, 10) g;
"""


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_partitions_inheritance_spaces_and_a_dumped_amcheck_pass(
    api: Api, backups_dir: Path, fmt: str
) -> None:
    """No false alarm: partitioned indexes are not btree-checked, inheritance parents are
    counted without their children, quoted names with spaces are counted, and a dump that
    installs amcheck itself keeps it (and gets checked with it)."""
    (backups_dir / "shapes.sql").write_text(SHAPES)
    source = api.create(backup="shapes.sql", probes="none")
    args = ["-Fc"] if fmt == "custom" else []
    dumped = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", *args, source["database"])
    name = "shapes_dump.dump" if fmt == "custom" else "shapes_dump.sql"
    (backups_dir / name).write_bytes(dumped)
    sandbox = api.create(backup=name)
    assert set(statuses(sandbox).values()) == {"pass"}, [
        p for p in sandbox["probes"] if p["status"] != "pass"
    ]
    parity = probe(sandbox, "row_parity")["data"]
    assert parity["rows_expected"] == 1000 + 1 + 2 + 10
    check = probe(sandbox, "amcheck")["data"]
    assert check["amcheck_schema"] == "public"
    assert check["indexes_checked"] == check["indexes"] >= 4  # 2 partitions, animals, items
    assert query_one(sandbox, "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == 1


def query_one(sandbox: dict[str, Any], sql: str) -> Any:
    from tests.conftest import query

    return query(sandbox["connection_url"], sql)[0][0]
