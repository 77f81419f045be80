"""Run the selected probes with a time budget; a probe that errors never hides the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import psycopg

from restorebox.backups.model import Backup
from restorebox.masking.evidence import Samples
from restorebox.models import Assertion, ProbeResult, ProbeStatus, RestoreReport, Sandbox
from restorebox.pg import connect
from restorebox.platforms import Classifier
from restorebox.platforms.prepare import prepared_schemas
from restorebox.probes.base import Context, Outcome
from restorebox.probes.catalog import MASKING_LEAKS, PROBES
from restorebox.probes.checks import run_assertion
from restorebox.restore.plan import RestorePlan

log = logging.getLogger("restorebox.probes")

Verdict = Literal["pass", "warn", "fail"]


def verdict_of(results: list[ProbeResult]) -> Verdict:
    statuses = {r.status for r in results}
    if "fail" in statuses:
        return "fail"
    if statuses & {"warn", "error", "skipped"}:
        return "warn"
    return "pass"


def run_probes(
    sandbox: Sandbox,
    plan: RestorePlan,
    report: RestoreReport | None,
    timeout_seconds: float,
    masking: Samples | None = None,
) -> tuple[list[ProbeResult], Verdict | None]:
    """Every selected probe against the sandbox's database; for dumps that made several
    databases, against each of them too (named ``probe [database]``), within one budget.
    A masked sandbox is always searched for leaks (``masking_leaks``), whatever the
    selection: that proof is what masking promises."""
    names = sandbox.probes_requested if sandbox.probes_requested is not None else list(PROBES)
    selected = [PROBES[n] for n in PROBES if n in names]
    if masking is not None:
        selected.append(MASKING_LEAKS)
    results: list[ProbeResult] = []
    deadline = time.monotonic() + timeout_seconds
    helpers = report.platform.helpers if report and report.platform else []
    classifier = Classifier(plan.profile, prepared_schemas(helpers))
    databases = (report.databases if report else []) or [sandbox.database]
    for database in databases:
        main = database == sandbox.database
        backups, db_report = (plan.backups, report) if main else _views_of(plan, report, database)
        if not main and not any(b.objects or b.row_counts for b in backups):
            continue  # a database the dump only passes through (pg_dumpall's postgres)
        suffix = "" if main else f" [{database}]"
        with connect(sandbox, dbname=database) as conn:
            ctx = Context(conn, sandbox, backups, db_report, deadline, classifier, masking)
            jobs: list[tuple[str, str, Callable[[Context], Outcome]]] = [
                (p.name + suffix, p.description, p.check) for p in selected
            ]
            if main:
                jobs += [
                    (f"assertion:{a.name}", "user assertion", _assertion(a))
                    for a in sandbox.assertions
                ]
            results += _run_jobs(ctx, conn, jobs, deadline, timeout_seconds)
    if not results:
        return results, None
    return results, verdict_of(results)


def _views_of(
    plan: RestorePlan, report: RestoreReport | None, database: str
) -> tuple[tuple[Backup, ...], RestoreReport | None]:
    """The backups and report as one of several databases sees them: its objects and
    rows only; errors stay the run's (they are reported once, on the main database)."""
    backups = []
    rows: dict[str, int] = {}
    for backup in plan.backups:
        content = backup.per_database.get(database)
        if content is None:
            continue
        rows.update(content.row_counts)
        backups.append(
            backup.model_copy(
                update={
                    "objects": content.objects,
                    "data_tables": sorted(content.row_counts),
                    "row_counts": content.row_counts,
                }
            )
        )
    view = None
    if report is not None:
        view = report.model_copy(
            update={"source_rows": rows, "errors": [], "error_groups": [], "errors_total": 0}
        )
    return tuple(backups), view


def _run_jobs(
    ctx: Context,
    conn: psycopg.Connection[Any],
    jobs: list[tuple[str, str, Callable[[Context], Outcome]]],
    deadline: float,
    timeout_seconds: float,
) -> list[ProbeResult]:
    results: list[ProbeResult] = []
    for name, description, check in jobs:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            results.append(
                ProbeResult(
                    name=name,
                    description=description,
                    status="skipped",
                    detail=f"the probe time budget of {timeout_seconds:g}s was used up",
                )
            )
            continue
        conn.execute(f"SET statement_timeout = {int(remaining * 1000)}")
        started = time.monotonic()
        status: ProbeStatus
        try:
            outcome = check(ctx)
            status, detail, data = outcome.status, outcome.detail, outcome.data
        except psycopg.Error as exc:
            status, detail, data = "error", f"the probe failed: {str(exc).strip()}", {}
            _recover(conn)
        except Exception as exc:  # a buggy probe must not hide the others
            log.exception("probe crashed", extra={"sandbox": ctx.sandbox.id, "probe": name})
            status, detail, data = "error", f"the probe crashed: {exc}", {}
        results.append(
            ProbeResult(
                name=name,
                description=description,
                status=status,
                detail=detail,
                data=data,
                duration_seconds=round(time.monotonic() - started, 3),
            )
        )
    conn.execute("RESET statement_timeout")
    return results


def _assertion(assertion: Assertion) -> Callable[[Context], Outcome]:
    return lambda ctx: run_assertion(ctx, assertion)


def _recover(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()


__all__ = ["run_probes", "verdict_of"]
