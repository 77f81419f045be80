"""What a drill records: the facts one restore of a backup (set) established, the
findings of comparing them with the series' baseline, and the drill itself."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "warn", "fail"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warn": 1, "fail": 2}


class Facts(BaseModel):
    """What one drill learned, from the backups' descriptions and the restored sandbox.
    Rows are what the backups carry (counted from the files), so a drill whose restore
    failed still compares its data with the baseline's."""

    backups: list[str]
    backup_bytes: int
    content: str  # the set's: complete, schema, data (schema + data makes complete)
    rows: dict[str, int] = Field(default_factory=dict)  # "schema.table" -> rows
    rows_known: bool = True  # False: the backup's rows could not be counted (tar)
    tables: list[str] = Field(default_factory=list)  # tables the backups declare
    objects: list[str] = Field(default_factory=list)  # "KIND schema.name", tables aside
    sequences: dict[str, int] = Field(default_factory=dict)  # last values, as restored
    truncated: list[str] = Field(default_factory=list)  # plain files cut short
    status: Literal["ready", "failed"]
    error: str | None = None
    verdict: str | None = None  # the sandbox's probes' verdict
    failed_probes: list[str] = Field(default_factory=list)
    probes: dict[str, str] = Field(default_factory=dict)  # every probe's status
    restore_seconds: float | None = None
    checks: dict[str, str | None] = Field(default_factory=dict)  # declared SQL checks


class Finding(BaseModel):
    code: str
    severity: Severity
    object: str | None = None
    before: str | int | float | None = None
    after: str | int | float | None = None
    message: str
    ignored: str | None = None  # the drills file's written reason; not in the verdict


class Drill(BaseModel):
    id: str
    series: str
    backups: list[str]
    status: Literal["running", "done"] = "running"
    verdict: Literal["pass", "warn", "fail"] | None = None
    findings: list[Finding] = Field(default_factory=list)
    baseline: str | None = None  # the drill this one was compared with
    accepted: bool = False  # a person made it the baseline
    restore_seconds: float | None = None
    started_at: datetime
    finished_at: datetime | None = None
    facts: Facts | None = None


def verdict_of(findings: list[Finding]) -> Literal["pass", "warn", "fail"]:
    worst = max((SEVERITY_RANK[f.severity] for f in findings if not f.ignored), default=0)
    return "fail" if worst == 2 else "warn" if worst == 1 else "pass"
