"""Run the selected probes with a time budget; a probe that errors never hides the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import psycopg

from ..models import Assertion, ProbeResult, ProbeStatus, RestoreReport, Sandbox
from ..pg import connect
from ..platforms import Classifier
from ..platforms.prepare import prepared_schemas
from ..restore.plan import RestorePlan
from .base import Context, Outcome
from .catalog import PROBES
from .checks import run_assertion

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
    sandbox: Sandbox, plan: RestorePlan, report: RestoreReport | None, timeout_seconds: float
) -> tuple[list[ProbeResult], Verdict | None]:
    names = sandbox.probes_requested if sandbox.probes_requested is not None else list(PROBES)
    selected = [PROBES[n] for n in PROBES if n in names]
    results: list[ProbeResult] = []
    deadline = time.monotonic() + timeout_seconds
    with connect(sandbox) as conn:
        helpers = report.platform.helpers if report and report.platform else []
        classifier = Classifier(plan.profile, prepared_schemas(helpers))
        ctx = Context(conn, sandbox, plan.backups, report, deadline, classifier)
        jobs: list[tuple[str, str, Callable[[Context], Outcome]]] = [
            (p.name, p.description, p.check) for p in selected
        ]
        jobs += [
            (f"assertion:{a.name}", "user assertion", _assertion(a)) for a in sandbox.assertions
        ]
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
                log.exception("probe crashed", extra={"sandbox": sandbox.id, "probe": name})
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
    if not results:
        return results, None
    return results, verdict_of(results)


def _assertion(assertion: Assertion) -> Callable[[Context], Outcome]:
    return lambda ctx: run_assertion(ctx, assertion)


def _recover(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()


__all__ = ["run_probes", "verdict_of"]
