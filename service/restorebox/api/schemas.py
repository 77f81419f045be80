"""Public request and response shapes. Internal fields (passwords aside from the URL,
engine ids) never leak because every route declares its response model."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from restorebox.backups.model import Backup
from restorebox.drills.model import Drill, Facts, Finding
from restorebox.lifecycle.image_builds import ImageState
from restorebox.masking.model import MaskingReport
from restorebox.models import (
    Assertion,
    ErrorInfo,
    ProbeResult,
    Progress,
    RestoreReport,
    Sandbox,
    Snapshot,
    Status,
)
from restorebox.runtime import StorageUsage

PROBE_NAMES_NONE = "none"


class CreateSandbox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(None, ge=10, le=10 * 365 * 24 * 3600)
    wait: bool = False
    postgres: str | int | None = Field(None, description='PostgreSQL major, e.g. "15" or "17"')
    backup: str | list[str] | None = Field(
        None, description="a backup name, or names restored in order into one database"
    )
    database: str | None = Field(None, min_length=1, max_length=63)
    on_error: Literal["stop", "continue"] = "stop"
    profile: Literal["auto", "none", "supabase", "rds", "cloudsql", "azure"] = Field(
        "auto", description="managed platform the dump comes from: detected, none, or forced"
    )
    probes: list[str] | Literal["none"] | None = None
    assertions: list[Assertion] = Field(default_factory=list, max_length=50)
    keep_on_failure: bool = False
    snapshot: str | None = Field(
        None, max_length=100, description="copy this snapshot (id or name) instead of backups"
    )
    fresh: bool = Field(
        False, description="restore from the backups even if a snapshot holds them (refreshes it)"
    )
    masking: str | dict[str, object] | None = Field(
        None,
        description='mask personal data: a policy object {"tables": {"public.t": {"col": '
        '"email"}}, "strict": false}, the name of a policy file in the backups folder, or '
        '"none"; left out, the dump\'s own PostgreSQL Anonymizer labels apply',
    )
    keep_snapshot: bool = Field(
        True,
        description="after a restore, keep a snapshot so later copies and resets take a second "
        "(false: a one-off check that is ready sooner and leaves no snapshot)",
    )

    @field_validator("postgres")
    @classmethod
    def _major(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str) and not value.isdigit():
            raise ValueError('must be a PostgreSQL major version such as "15" or "17"')
        if isinstance(value, bool):
            raise ValueError("must be a PostgreSQL major version")
        return value

    def backups(self) -> list[str]:
        if self.backup is None:
            return []
        return [self.backup] if isinstance(self.backup, str) else list(self.backup)


class UpdateSandbox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(
        None, ge=10, le=10 * 365 * 24 * 3600, description="new lifetime, counted from now"
    )
    protected: bool | None = None


class SandboxOut(BaseModel):
    id: str
    status: Status
    connection_url: str | None
    postgres_version: str | None
    database: str
    backups: list[str]
    created_at: datetime
    expires_at: datetime
    ready_at: datetime | None
    protected: bool
    error: ErrorInfo | None
    progress: Progress | None
    restore: RestoreReport | None
    verdict: Literal["pass", "warn", "fail"] | None
    probes: list[ProbeResult] | None
    masking: MaskingReport | None = Field(None, description="what masking did (masked copies)")
    snapshot_id: str | None = Field(None, description="the snapshot a reset goes back to")
    from_snapshot: bool = False
    hold: str | None = Field(
        None, description="work under way on a ready sandbox: 'snapshot' while one is taken"
    )
    seq: int = Field(0, description="the sandbox's status changes, counted")

    model_config = ConfigDict(from_attributes=True)

    @field_validator("postgres_version", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> str | None:
        return None if value is None else str(value)

    @classmethod
    def of(cls, sandbox: Sandbox) -> SandboxOut:
        return cls.model_validate(sandbox)


class SandboxList(BaseModel):
    sandboxes: list[SandboxOut]


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: Status
    verdict: Literal["pass", "warn", "fail"] | None
    backups: list[str]
    restore: RestoreReport | None
    probes: list[ProbeResult] | None
    masking: MaskingReport | None = None
    error: ErrorInfo | None


class BackupOut(BaseModel):
    name: str
    format: str
    compression: str
    content: str
    size_bytes: int
    sha256: str
    source_server_version: str | None
    pg_dump_version: str | None
    encoding: str | None = Field(None, description="the dump's character encoding")
    roles: list[str]
    warnings: list[str]

    @classmethod
    def of(cls, backup: Backup) -> BackupOut:
        return cls.model_validate(backup.model_dump())


class UnreadableBackup(BaseModel):
    name: str
    error: ErrorInfo


class BackupInspecting(BaseModel):
    name: str
    status: Literal["inspecting"] = "inspecting"


class BackupList(BaseModel):
    backups: list[BackupOut]
    unreadable: list[UnreadableBackup]
    inspecting: list[str] = Field(default_factory=list)


class StoreOut(BaseModel):
    mode: Literal["reflink", "xfs-loop", "overlay"] = Field(
        description="where sandboxes keep their data: 'reflink' (a store on a filesystem "
        "that clones files), 'xfs-loop' (a store in an XFS image restorebox mounted), or "
        "'overlay' (no store: each container's own layer; copies pay a copy-up of every "
        "file they open)"
    )
    path: str | None = None
    reason: str | None = Field(None, description="why there is no store (mode 'overlay')")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    engine: Literal["ok", "unavailable"]
    isolation: str = Field(
        description="whether sandboxes are verified unable to open connections out "
        "(checked at start): 'verified', or why not when RESTOREBOX_ALLOW_EGRESS allows it"
    )
    images: dict[str, ImageState] = Field(
        default_factory=dict,
        description="each configured PostgreSQL major's image: 'ready', 'building' (scripts/"
        "serve builds the others in the background), 'failed', or 'absent' (pulled from a "
        "registry on first use); empty when the engine does not answer",
    )
    store: StoreOut
    version: str


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    kind: Literal["cache", "named"]
    backups: list[str]
    postgres_version: int
    database: str
    size_bytes: int = Field(
        description="what it holds on disk: with a store, the blocks it alone holds (freed "
        "if it were deleted; blocks shared with its source or copies are not counted); "
        "on the overlay path, its image's own layer"
    )
    logical_bytes: int | None = Field(
        None, description="with a store: the size of its files, shared blocks included"
    )
    size_basis: Literal["exclusive", "image"] = "image"
    verdict: Literal["pass", "warn", "fail"] | None
    masked: bool = Field(False, description="its data is masked (see the sandbox's masking)")
    source_sandbox: str | None
    created_at: datetime
    last_used_at: datetime
    hot_copies: int = Field(
        0, description="copies of it started ahead, waiting for creates (setting hot_copies)"
    )
    replaced_by: str | None = Field(
        None,
        description="the snapshot a `fresh` restore replaced this one with; it is kept "
        "only while live sandboxes reset to it",
    )

    @classmethod
    def of(
        cls, snapshot: Snapshot, hot_copies: int = 0, usage: StorageUsage | None = None
    ) -> SnapshotOut:
        sizes = {}
        if usage is not None and snapshot.image in usage.exclusive:
            sizes = {
                "size_bytes": usage.exclusive[snapshot.image],
                "logical_bytes": usage.logical[snapshot.image],
                "size_basis": "exclusive",
            }
        return cls.model_validate(
            {
                **snapshot.model_dump(),
                "kind": "named" if snapshot.name else "cache",
                "masked": snapshot.masking is not None,
                "hot_copies": hot_copies,
                **sizes,
            }
        )


class SnapshotList(BaseModel):
    snapshots: list[SnapshotOut]


class SaveSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)


class ResetSandbox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: bool = False


class SandboxEvent(BaseModel):
    """What `GET /v1/sandboxes/{id}/events` sends on each change (the full report is at
    `GET /v1/sandboxes/{id}`)."""

    id: str
    seq: int  # the sandbox's status changes, counted: events arrive in this order
    status: Status
    progress: Progress | None
    verdict: Literal["pass", "warn", "fail"] | None
    error: ErrorInfo | None
    connection_url: str | None
    expires_at: datetime

    model_config = ConfigDict(from_attributes=True)


class DrillSummary(BaseModel):
    """A drill as lists show it: what was restored, the verdict and the findings."""

    id: str
    series: str
    backups: list[str]
    status: Literal["running", "done"]
    verdict: Literal["pass", "warn", "fail"] | None
    findings: list[Finding]
    baseline: str | None = Field(description="the drill this one was compared with")
    accepted: bool
    restore_seconds: float | None
    started_at: datetime
    finished_at: datetime | None
    total_rows: int | None = Field(None, description="rows the backups carry, all tables")
    backup_bytes: int | None = None
    largest_tables: dict[str, int] = Field(
        default_factory=dict, description="the backups' three largest tables, by rows"
    )

    @classmethod
    def of(cls, drill: Drill) -> DrillSummary:
        facts = drill.facts
        numbers: dict[str, object] = {}
        if facts is not None:
            largest = sorted(facts.rows.items(), key=lambda item: -item[1])[:3]
            numbers = {
                "total_rows": sum(facts.rows.values()) if facts.rows_known else None,
                "backup_bytes": facts.backup_bytes,
                "largest_tables": dict(largest),
            }
        return cls.model_validate({**drill.model_dump(exclude={"facts"}), **numbers})


class DrillOut(DrillSummary):
    """A drill with the comparison: its facts and its baseline's."""

    facts: Facts | None
    baseline_facts: Facts | None

    @classmethod
    def full(cls, drill: Drill, baseline: Drill | None) -> DrillOut:
        summary = DrillSummary.of(drill).model_dump()
        return cls.model_validate(
            {
                **summary,
                "facts": drill.facts,
                "baseline_facts": baseline.facts if baseline else None,
            }
        )


class DrillList(BaseModel):
    drills: list[DrillSummary]


class SeriesOut(BaseModel):
    name: str
    backups: list[str] = Field(description="oldest first")
    newest_at: datetime | None = Field(
        description="the newest backup's time (its name, else mtime)"
    )
    every_seconds: float | None = Field(
        description="the expected interval between backups: declared, else the median gap"
    )
    stale: bool = Field(description="no backup within the expected interval (BACKUP_STALE)")
    last_drill: DrillSummary | None
    baseline: DrillSummary | None


class SeriesList(BaseModel):
    series: list[SeriesOut]
    drills_file_error: str | None = Field(
        None, description="what is wrong with restorebox-drills.yaml (series then come from names)"
    )
