"""Issue 19: series from names, sets, staleness, the drills file, the history's baseline,
and verify's JUnit output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest

from restorebox.drills.config import FILE_NAME, load
from restorebox.drills.model import Drill, Facts, Finding
from restorebox.drills.series import drill_set, group, ordered_set, read_name
from restorebox.drills.store import DrillStore
from restorebox.tools.verify import failing, junit

T = datetime(2025, 9, 2, 21, 40, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "series", "stamp"),
    [
        ("factory_pulse_complete_backup_20250902_214058.sql", "factory_pulse_complete_backup", T),
        ("app-2025-09-02T21-40-58.dump", "app", T),
        ("app_2025-09-02T21:40:58Z.sql.gz", "app", T),
        ("nightly_2025-09-02.sql.zst", "nightly", T.replace(hour=0, minute=0, second=0)),
        ("db_1756849258.sql", "db", T),
        ("nightly/app_20250902.tar", "nightly/app", T.replace(hour=0, minute=0, second=0)),
        ("plain.sql", "plain", None),
        ("order_12345.sql", "order_12345", None),  # a number, not a time
    ],
)
def test_series_names(name: str, series: str, stamp: datetime | None) -> None:
    named = read_name(name)
    assert (named.series, named.stamp) == (series, stamp)


def test_grouping_intervals_and_staleness() -> None:
    mtime = T
    names = {f"app_2025-09-{day:02d}.sql": mtime for day in (1, 2, 3, 4)}
    names["other.sql"] = mtime
    series = group(names)
    app = series["app"]
    assert [n for n, _ in app.backups][-1] == "app_2025-09-04.sql"
    assert app.expected_interval() == 86400
    newest = app.backups[-1][1]
    assert not app.stale(newest + timedelta(hours=30))  # half an interval of grace
    assert app.stale(newest + timedelta(hours=37))
    assert series["other"].expected_interval() is None
    assert not series["other"].stale(newest + timedelta(days=400))
    declared = group(names, lambda n: ("mine", 3600.0) if n.startswith("app") else None)
    assert set(declared) == {"mine", "other"}
    assert declared["mine"].stale(newest + timedelta(hours=1, seconds=1))  # no grace


def test_a_data_only_backup_is_drilled_after_its_schema() -> None:
    content = {
        "shop_schema_20250902_020000.sql": "schema",
        "shop_data_20250902_020000.sql": "data",
        "shop_schema_20250901_020000.sql": "schema",
    }
    assert drill_set("shop_data_20250902_020000.sql", content) == [
        "shop_schema_20250902_020000.sql",
        "shop_data_20250902_020000.sql",
    ]
    assert drill_set("shop_schema_20250902_020000.sql", content) == [
        "shop_schema_20250902_020000.sql"
    ]
    names = [*content, "shop_roles_20250902_020000.sql"]
    assert ordered_set(
        "shop_data_20250902_020000.sql", ["shop_roles_*", "shop_schema_*", "shop_data_*"], names
    ) == [
        "shop_roles_20250902_020000.sql",
        "shop_schema_20250902_020000.sql",
        "shop_data_20250902_020000.sql",
    ]


def test_the_drills_file_and_its_mistakes(tmp_path: Path) -> None:
    assert load(tmp_path) == (load(tmp_path)[0], None)  # no file: nothing wrong
    (tmp_path / FILE_NAME).write_text(
        "series:\n"
        "  - name: shop\n"
        '    match: "shop_*.sql"\n'
        "    every: 24h\n"
        "    rows_dropped: 5%\n"
        "    rto: 10m\n"
        "    min_rows: {public.users: 100}\n"
        "    checks: [{name: admins, sql: select 1, expect: 1}]\n"
        "    ignore: [{code: OBJECT_ADDED, reason: releases add tables}]\n"
    )
    drills_file, problem = load(tmp_path)
    assert problem is None
    entry = drills_file.entry("shop")
    assert entry is not None
    assert (entry.every, entry.rows_dropped, entry.rto) == (86400, 0.05, 600)
    rules = entry.rules()
    assert (rules.rows_dropped, rules.min_rows, rules.checks[0].expect) == (
        0.05,
        {"public.users": 100},
        "1",
    )
    assert drills_file.owner_of("shop_2025.sql") is entry
    assert drills_file.owner_of("other.sql") is None
    (tmp_path / FILE_NAME).write_text("series:\n  - name: x\n    match: y\n    every: soon\n")
    _, problem = load(tmp_path)
    assert problem is not None
    assert "every" in problem
    assert "30m, 24h or 7d" in problem
    (tmp_path / FILE_NAME).write_text("series: [\n")
    assert "not valid YAML" in (load(tmp_path)[1] or "")
    (tmp_path / FILE_NAME).write_text("series:\n  - {name: x, match: y, ignore: [{code: X}]}\n")
    assert "reason" in (load(tmp_path)[1] or "")


def drill(n: int, verdict: str, accepted: bool = False) -> Drill:
    return Drill(
        id=f"d{n}",
        series="app",
        backups=[f"app_{n}.sql"],
        status="done",
        verdict=verdict,  # type: ignore[arg-type]
        accepted=accepted,
        started_at=T + timedelta(days=n),
    )


def test_the_baseline_is_the_newest_pass_or_accepted_never_a_failure(tmp_path: Path) -> None:
    store = DrillStore(tmp_path / "drills.sqlite3", retention=3)
    for made in (drill(1, "pass"), drill(2, "warn"), drill(3, "fail")):
        store.save(made)
    baseline = store.baseline("app")
    assert baseline is not None
    assert baseline.id == "d1"
    store.save(drill(3, "fail", accepted=True))
    assert (store.baseline("app") or drill(0, "pass")).id == "d3"
    assert (store.baseline("app", before="d3") or drill(0, "pass")).id == "d1"
    store.save(drill(4, "pass"))
    assert [d.id for d in store.of_series("app")] == ["d4", "d3", "d2"]  # retention 3
    store.mark_stale("app", "app_4.sql")
    assert store.stale_reported("app") == "app_4.sql"
    store.mark_stale("app", None)
    assert store.stale_reported("app") is None


def test_junit_has_a_case_per_probe_and_check_and_fails_on_findings() -> None:
    facts = Facts(
        backups=["app.sql"], backup_bytes=1, content="complete", status="ready",
        verdict="fail", probes={"row_parity": "pass", "rls": "fail"}, checks={"admins": "0"},
    )  # fmt: skip
    findings = [
        Finding(code="VERDICT_FAIL", severity="fail", object="rls", message="probes failed"),
        Finding(code="CHECK_FAILED", severity="fail", object="admins", message="0, not 1"),
        Finding(code="ROWS_DROPPED", severity="warn", object="public.t", message="lost rows"),
        Finding(code="OBJECT_ADDED", severity="info", object="VIEW v", message="new"),
    ]
    made = drill(5, "fail").model_copy(update={"facts": facts, "findings": findings})
    assert [f.code for f in failing(made, "warn")] == [
        "VERDICT_FAIL",
        "CHECK_FAILED",
        "ROWS_DROPPED",
    ]
    suite = ElementTree.fromstring(junit(made, "warn"))  # noqa: S314 (our own output)
    cases = {c.get("name"): c.find("failure") is not None for c in suite.iter("testcase")}
    assert cases == {
        "probe rls": True,
        "probe row_parity": False,
        "check admins": True,
        "ROWS_DROPPED public.t": True,
    }
    assert suite.get("failures") == "3"
    quiet = junit(made, "fail")
    assert b"ROWS_DROPPED" not in quiet
