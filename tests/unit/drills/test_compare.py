"""Issue 19: findings between successive drills of a series. A generated history of a
growing database gives no finding at warn or above; each planted fault gives its code,
on the right object."""

from __future__ import annotations

import random
from typing import Any

import pytest

from restorebox.drills.compare import Check, Rules, compare
from restorebox.drills.model import SEVERITY_RANK, Facts, verdict_of

TABLES = ["public.customers", "public.orders", "public.order_lines", "public.products"]


def history(days: int, seed: int = 7) -> list[Facts]:
    """Daily facts of a growing application database: rows, file size and sequences up a
    few percent a day, restore time jittering, a new index now and then."""
    rng = random.Random(seed)
    rows = {"public.customers": 800, "public.orders": 5000, "public.order_lines": 20000,
            "public.products": 120}  # fmt: skip
    objects = ["INDEX public.orders_customer_idx", "FUNCTION public.touch", "VIEW public.sales",
               "SEQUENCE public.orders_id_seq", "EXTENSION public.pgcrypto"]  # fmt: skip
    facts = []
    size = 9_000_000
    for day in range(days):
        for table in rows:
            rows[table] += int(rows[table] * rng.uniform(0.0, 0.03))
        size = int(size * rng.uniform(1.0, 1.03))
        if day % 9 == 8:
            objects.append(f"INDEX public.orders_day{day}_idx")
        facts.append(
            Facts(
                backups=[f"app_2025-09-{day + 1:02d}.sql"],
                backup_bytes=size,
                content="complete",
                rows=dict(rows),
                tables=list(TABLES),
                objects=list(objects),
                sequences={"public.orders_id_seq": rows["public.orders"]},
                status="ready",
                verdict="pass",
                restore_seconds=round(rng.uniform(8, 14), 1),
            )
        )
    return facts


def serious(findings: list[Any]) -> list[Any]:
    return [f for f in findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["warn"]]


def test_thirty_days_of_normal_growth_give_nothing_at_warn_or_above() -> None:
    days = history(35)
    baseline = None
    for facts in days:
        findings = compare("app", facts, baseline, Rules())
        assert serious(findings) == [], (facts.backups, findings)
        if verdict_of(findings) == "pass":
            baseline = facts
    # New indexes are noticed, as information only.
    added = compare("app", days[9], days[7], Rules())
    assert [(f.code, f.severity) for f in added] == [("OBJECT_ADDED", "info")]


def planted(**change: Any) -> tuple[Facts, Facts]:
    days = history(3)
    return days[1], days[2].model_copy(update=change)


def codes(findings: list[Any]) -> list[tuple[str, str | None]]:
    return [(f.code, f.object) for f in findings if f.severity != "info"]


def test_each_planted_fault_is_named_with_its_object() -> None:
    base, good = planted()
    emptied = dict(good.rows, **{"public.orders": 0})
    assert codes(compare("app", good.model_copy(update={"rows": emptied}), base, Rules())) == [
        ("TABLE_EMPTIED", "public.orders")
    ]
    dropped = dict(good.rows, **{"public.order_lines": good.rows["public.order_lines"] // 2})
    found = compare("app", good.model_copy(update={"rows": dropped}), base, Rules())
    assert codes(found) == [("ROWS_DROPPED", "public.order_lines")]
    assert found[0].before == base.rows["public.order_lines"]
    gone = [t for t in TABLES if t != "public.products"]
    fewer = {t: n for t, n in good.rows.items() if t != "public.products"}
    missing = good.model_copy(update={"tables": gone, "rows": fewer})
    assert codes(compare("app", missing, base, Rules())) == [("TABLE_MISSING", "public.products")]
    objects = [o for o in good.objects if o != "FUNCTION public.touch"]
    assert codes(compare("app", good.model_copy(update={"objects": objects}), base, Rules())) == [
        ("OBJECT_MISSING", "FUNCTION public.touch")
    ]
    behind = good.model_copy(update={"sequences": {"public.orders_id_seq": 10}})
    assert codes(compare("app", behind, base, Rules())) == [
        ("SEQUENCE_BEHIND", "public.orders_id_seq")
    ]
    small = good.model_copy(update={"backup_bytes": base.backup_bytes // 2})
    assert [c for c, _ in codes(compare("app", small, base, Rules()))] == ["BACKUP_SHRANK"]
    slow = good.model_copy(update={"restore_seconds": (base.restore_seconds or 0) * 4})
    assert [c for c, _ in codes(compare("app", slow, base, Rules()))] == ["RTO_EXCEEDED"]
    cut = good.model_copy(update={"truncated": ["app_2025-09-03.sql"]})
    assert codes(compare("app", cut, base, Rules())) == [("TRUNCATED", "app_2025-09-03.sql")]
    failed = good.model_copy(update={"status": "failed", "error": "syntax error at line 9"})
    assert [c for c, _ in codes(compare("app", failed, base, Rules()))] == ["RESTORE_FAILED"]
    probes = good.model_copy(update={"verdict": "fail", "failed_probes": ["row_parity"]})
    assert codes(compare("app", probes, base, Rules())) == [("VERDICT_FAIL", "row_parity")]


def test_the_seeds_complete_backup_that_holds_only_the_schema() -> None:
    """CONTENT_MISMATCH, from the baseline, and from the name when there is none; the
    rows it lost are compared too."""
    base, good = planted()
    schema_only = good.model_copy(update={"content": "schema", "rows": {}})
    found = compare("factory_pulse_complete_backup", schema_only, base, Rules())
    assert ("CONTENT_MISMATCH", "app_2025-09-03.sql") in codes(found)
    assert {c for c, _ in codes(found)} >= {"CONTENT_MISMATCH", "TABLE_EMPTIED"}
    alone = compare("factory_pulse_complete_backup", schema_only, None, Rules())
    assert [c for c, _ in codes(alone)] == ["CONTENT_MISMATCH"]
    assert compare("nightly_schema_only", schema_only, None, Rules()) == []
    assert compare("metadata_nightly", schema_only, None, Rules()) == []  # not "data"


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        (Rules(min_rows={"public.products": 10_000}), "CHECK_FAILED"),
        (Rules(checks=(Check("one admin", "select 1", "1"),)), "CHECK_FAILED"),
        (Rules(rto_limit_seconds=1.0), "RTO_EXCEEDED"),
    ],
)
def test_declared_expectations(rules: Rules, code: str) -> None:
    base, good = planted()
    assert code in [c for c, _ in codes(compare("app", good, base, rules))]
    passing = good.model_copy(update={"checks": {"one admin": "1"}})
    if rules.checks:
        assert codes(compare("app", passing, base, rules)) == []
