"""A drill's facts against its series' baseline: every difference that matters is a
finding with a stable code. Normal growth (more rows, a bigger file, new objects) gives
nothing at ``warn`` or above; what a careful DBA would want to hear about does.

Codes: RESTORE_FAILED, VERDICT_FAIL, CONTENT_MISMATCH, TRUNCATED, TABLE_MISSING,
TABLE_EMPTIED, ROWS_DROPPED, OBJECT_MISSING, OBJECT_ADDED, SEQUENCE_BEHIND,
BACKUP_SHRANK, RTO_EXCEEDED, CHECK_FAILED (BACKUP_STALE is the series', see series)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from restorebox.drills.model import Facts, Finding, Severity


@dataclass(frozen=True)
class Check:
    """A declared SQL check: its query's first value must equal ``expect``."""

    name: str
    sql: str
    expect: str


@dataclass(frozen=True)
class Rules:
    """A series' thresholds and declared expectations (restorebox-drills.yaml)."""

    rows_dropped: float = 0.10  # ROWS_DROPPED beyond this share of a table...
    rows_floor: int = 100  # ...that held at least this many rows
    shrank: float = 0.20  # BACKUP_SHRANK beyond this share of the baseline's size
    rto_factor: float = 3.0  # RTO_EXCEEDED: this many times the baseline's restore...
    rto_floor_seconds: float = 10.0  # ...when it took at least this long
    rto_limit_seconds: float | None = None  # or past a declared limit
    min_rows: dict[str, int] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    expect_content: str | None = None  # "complete", "data", "schema"; else from the name


def compare(series: str, facts: Facts, baseline: Facts | None, rules: Rules) -> list[Finding]:
    findings = _on_its_own(series, facts, baseline, rules)
    if baseline is not None:
        findings += _against(facts, baseline, rules)
    return findings


def expected_content(series: str, baseline: Facts | None, rules: Rules) -> str | None:
    """What the series' backups should hold: declared, else the baseline's, else what
    the name says (the seed's "complete" file that held only the schema)."""
    if rules.expect_content:
        return rules.expect_content
    if baseline is not None and baseline.content in ("complete", "data") and baseline.rows:
        return baseline.content
    words = set(re.split(r"[^a-z0-9]+", series.lower()))  # "metadata" is not "data"
    if "schema" in words:
        return "schema"
    if "data" in words:
        return "data"
    if words & {"complete", "full", "all"}:
        return "complete"
    return None


def _on_its_own(series: str, facts: Facts, baseline: Facts | None, rules: Rules) -> list[Finding]:
    found: list[Finding] = []
    if facts.status == "failed":
        found.append(
            Finding(
                code="RESTORE_FAILED",
                severity="fail",
                object=", ".join(facts.backups),
                message=f"the restore failed: {facts.error or 'no reason given'}",
            )
        )
    elif facts.verdict == "fail":
        found.append(
            Finding(
                code="VERDICT_FAIL",
                severity="fail",
                object=", ".join(facts.failed_probes) or None,
                message="probes failed on the restored copy: "
                + (", ".join(facts.failed_probes) or "see the drill's sandbox report"),
            )
        )
    for name in facts.truncated:
        found.append(
            Finding(
                code="TRUNCATED",
                severity="fail",
                object=name,
                message=f"{name} ends without pg_dump's 'dump complete' trailer: it was cut "
                "short (disk full, a killed pg_dump, an interrupted copy)",
            )
        )
    expected = expected_content(series, baseline, rules)
    total = sum(facts.rows.values())
    holds_no_data = facts.content == "schema" or (facts.rows_known and total == 0)
    if expected in ("complete", "data") and holds_no_data:
        found.append(
            Finding(
                code="CONTENT_MISMATCH",
                severity="fail",
                object=", ".join(facts.backups),
                before=expected,
                after=facts.content,
                message=f"the series' backups hold {expected} content, but this one carries "
                "no rows: only the schema was dumped",
            )
        )
    for table, minimum in sorted(rules.min_rows.items()):
        rows = facts.rows.get(table, 0)
        if facts.rows_known and rows < minimum:
            found.append(
                Finding(
                    code="CHECK_FAILED",
                    severity="fail",
                    object=table,
                    before=minimum,
                    after=rows,
                    message=f"{table} holds {rows} rows, fewer than the declared {minimum}",
                )
            )
    for check in rules.checks:
        if facts.status != "ready":
            break
        got = facts.checks.get(check.name)
        if got != check.expect:
            found.append(
                Finding(
                    code="CHECK_FAILED",
                    severity="fail",
                    object=check.name,
                    before=check.expect,
                    after=got,
                    message=f"check {check.name!r} returned {got!r}, expected {check.expect!r}",
                )
            )
    limit = rules.rto_limit_seconds
    if limit is not None and (facts.restore_seconds or 0) > limit:
        found.append(
            Finding(
                code="RTO_EXCEEDED",
                severity="warn",
                before=limit,
                after=facts.restore_seconds,
                message=f"the restore took {facts.restore_seconds or 0:.0f} s, over the "
                f"declared {limit:.0f} s",
            )
        )
    return found


def _against(facts: Facts, baseline: Facts, rules: Rules) -> list[Finding]:
    found: list[Finding] = []
    declared_before = set(baseline.tables) or set(baseline.rows)
    declared_now = set(facts.tables) or set(facts.rows)
    schema_known = bool(facts.tables) and bool(baseline.tables)
    if schema_known or facts.content == baseline.content:
        for table in sorted(declared_before - declared_now):
            found.append(
                Finding(
                    code="TABLE_MISSING",
                    severity="fail",
                    object=table,
                    before=baseline.rows.get(table),
                    after=None,
                    message=f"table {table} was in the last good backup and is not in this one",
                )
            )
    if facts.rows_known and baseline.rows_known:
        for table in sorted(declared_before & declared_now):
            before, after = baseline.rows.get(table, 0), facts.rows.get(table, 0)
            if before > 0 and after == 0:
                found.append(
                    Finding(
                        code="TABLE_EMPTIED",
                        severity="fail",
                        object=table,
                        before=before,
                        after=0,
                        message=f"table {table} held {before} rows and now holds none",
                    )
                )
            elif before >= rules.rows_floor and after < before * (1 - rules.rows_dropped):
                share = 100 * (before - after) / before
                found.append(
                    Finding(
                        code="ROWS_DROPPED",
                        severity="warn",
                        object=table,
                        before=before,
                        after=after,
                        message=f"table {table} lost {before - after} rows ({share:.0f}%) since "
                        "the last good backup",
                    )
                )
    before_objects, now_objects = set(baseline.objects), set(facts.objects)
    if schema_known:
        added = sorted(now_objects - before_objects)
        added += [f"TABLE {t}" for t in sorted(declared_now - declared_before)]
        changes: list[tuple[str, Severity, list[str], str]] = [
            ("OBJECT_MISSING", "warn", sorted(before_objects - now_objects),
             "was in the last good backup and is not in this one"),
            ("OBJECT_ADDED", "info", added, "is new since the last good backup"),
        ]  # fmt: skip
        for code, severity, objects, said in changes:
            found += [
                Finding(code=code, severity=severity, object=obj, message=f"{_named(obj)} {said}")
                for obj in objects
            ]
    for name, before_value in sorted(baseline.sequences.items()):
        after_value = facts.sequences.get(name)
        if after_value is not None and after_value < before_value:
            found.append(
                Finding(
                    code="SEQUENCE_BEHIND",
                    severity="warn",
                    object=name,
                    before=before_value,
                    after=after_value,
                    message=f"sequence {name} is at {after_value}, behind the {before_value} of "
                    "the last good backup: new rows would reuse ids",
                )
            )
    if baseline.backup_bytes and facts.backup_bytes < baseline.backup_bytes * (1 - rules.shrank):
        share = 100 * (baseline.backup_bytes - facts.backup_bytes) / baseline.backup_bytes
        found.append(
            Finding(
                code="BACKUP_SHRANK",
                severity="warn",
                object=", ".join(facts.backups),
                before=baseline.backup_bytes,
                after=facts.backup_bytes,
                message=f"the backup is {share:.0f}% smaller than the last good one",
            )
        )
    before_s, after_s = baseline.restore_seconds, facts.restore_seconds
    if (
        rules.rto_limit_seconds is None
        and before_s
        and after_s
        and after_s >= rules.rto_floor_seconds
        and after_s > before_s * rules.rto_factor
    ):
        found.append(
            Finding(
                code="RTO_EXCEEDED",
                severity="warn",
                before=before_s,
                after=after_s,
                message=f"the restore took {after_s:.0f} s, over {rules.rto_factor:g}x the "
                f"last good one's {before_s:.0f} s",
            )
        )
    return found


def _named(obj: str) -> str:
    """'FK CONSTRAINT public.orders_fk' -> 'fk constraint public.orders_fk' (the kind in
    lower case, the name as it is)."""
    match = re.match(r"([A-Z]+(?: [A-Z]+)*) (.+)$", obj)
    return f"{match.group(1).lower()} {match.group(2)}" if match else obj
