"""Run the selected probes with a time budget; a probe that errors never hides the others."""

from __future__ import annotations

from typing import Literal

from ..models import ProbeResult, RestoreReport, Sandbox
from ..restore.plan import RestorePlan

Verdict = Literal["pass", "warn", "fail"]


def run_probes(
    sandbox: Sandbox, plan: RestorePlan, report: RestoreReport | None, timeout_seconds: float
) -> tuple[list[ProbeResult], Verdict | None]:
    return [], None
