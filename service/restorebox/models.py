"""The sandbox record: what restorebox knows about one sandbox, as stored in state."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from restorebox.masking.model import MaskingReport
from restorebox.masking.policy import MaskingPolicy


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    CREATING = "creating"
    RESTORING = "restoring"
    PROBING = "probing"
    READY = "ready"
    RESETTING = "resetting"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"
    EXPIRED = "expired"

    @property
    def in_progress(self) -> bool:
        return self in (Status.CREATING, Status.RESTORING, Status.PROBING, Status.RESETTING)

    @property
    def final(self) -> bool:
        return self in (Status.DELETED, Status.EXPIRED)


class ErrorInfo(BaseModel):
    code: str
    message: str


class Progress(BaseModel):
    phase: str
    step: int = 0
    steps: int = 0
    file: str | None = None
    bytes_done: int = 0
    bytes_total: int = 0


class RestoreStep(BaseModel):
    backup: str
    format: str
    content: str
    tool: str
    bytes: int
    duration_seconds: float = 0.0
    triggers_disabled: bool = False
    exit_code: int | None = None
    errors_total: int = 0  # every error the tool reported (the report keeps the first ones)


class RestoreError(BaseModel):
    backup: str
    message: str
    detail: str | None = None  # the server's DETAIL / HINT / CONTEXT / LINE lines
    line: int | None = None
    statement: str | None = None
    toc_entry: str | None = None
    cascaded: int = 0  # follow-on errors folded into this one (data rows of a failed COPY)
    platform: bool = False  # about a managed platform's pieces, not the user's objects


class ErrorGroup(BaseModel):
    """Errors of one kind: the message with names and numbers blanked, how many, where
    the first one was, and what to do about it when restorebox knows."""

    backup: str
    template: str
    count: int
    first_message: str
    first_line: int | None = None
    first_toc_entry: str | None = None
    cascaded: int = 0
    hint: str | None = None
    platform: bool = False


class PlatformReport(BaseModel):
    """How a managed platform's dump was met: what was prepared, stood in for, missing."""

    profile: str
    evidence: list[str] = Field(default_factory=list)
    roles_prepared: list[str] = Field(default_factory=list)
    helpers: list[str] = Field(default_factory=list)
    stand_ins: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)  # platform pieces that could not be provided


class RestoreReport(BaseModel):
    steps: list[RestoreStep] = Field(default_factory=list)
    errors: list[RestoreError] = Field(default_factory=list)  # the first ones, whole
    errors_total: int = 0  # every error, listed or not (cascades not included)
    error_groups: list[ErrorGroup] = Field(default_factory=list)
    platform: PlatformReport | None = None
    roles_created: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    # Rows per table the backups carry (COPY rows / INSERTs / archive data entries).
    source_rows: dict[str, int] = Field(default_factory=dict)
    # Every database the restore made, when the dump makes them (the sandbox's first).
    databases: list[str] = Field(default_factory=list)
    # Data entries of a failed restore whose tables are still empty.
    not_loaded: list[str] = Field(default_factory=list)
    duration_seconds: float = 0.0


ProbeStatus = Literal["pass", "warn", "fail", "error", "skipped"]


class ProbeResult(BaseModel):
    name: str
    description: str
    status: ProbeStatus
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)
    duration_seconds: float = 0.0


class Assertion(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    sql: str = Field(min_length=1, max_length=10_000)


class Sandbox(BaseModel):
    id: str
    status: Status
    owner: str = "admin"  # the principal that made it; others cannot see it
    postgres_version: int | None  # None while the backups are inspected
    image: str | None
    platform_image: bool = False  # the image is a platform's own (no stand-ins needed)
    created_at: datetime
    expires_at: datetime
    protected: bool = False
    user: str = "restorebox"
    password: str = ""
    database: str = "sandbox"
    # The dump makes its own databases (pg_dumpall, pg_dump --create): the server starts
    # with only its maintenance database, and ``database`` is one the dump creates.
    creates_databases: bool = False
    # Snapshots: the one this sandbox starts from (a copy) or was kept from (a restore);
    # a reset goes back to it.
    snapshot_id: str | None = None
    from_snapshot: bool = False
    fresh: bool = False  # restore from the backup even if a snapshot holds it
    keep_snapshot: bool = True  # after a restore, keep a snapshot for copies and resets
    # A copy started ahead, waiting to be claimed by a create (``hot_copies``): nobody's
    # yet, so hidden from the API, limits, expiry, metrics and webhooks.
    hot: bool = False
    database_requested: str | None = None  # what the request asked for, if anything
    host: str = "127.0.0.1"  # where the service connects
    url_host: str | None = None  # what connection URLs name, when it differs
    port: int | None = None
    container_id: str | None = None
    backups: list[str] = Field(default_factory=list)
    on_error: Literal["stop", "continue"] = "stop"
    profile_requested: str = "auto"  # a platform profile name, "auto" or "none"
    probes_requested: list[str] | None = None  # None: every default probe
    assertions: list[Assertion] = Field(default_factory=list)
    keep_on_failure: bool = False
    # What the create asked ("none", a policy object, a policy file's name; None: the
    # dump's own labels), the policy resolved from it, and what masking did.
    masking_requested: str | dict[str, Any] | None = None
    masking_policy: MaskingPolicy | None = None
    masking: MaskingReport | None = None
    container_kept: bool = False  # failed, and its container deliberately left for inspection
    ends_as: Status | None = None  # deleted or expired, once deleting
    # Work on a ready sandbox that the reconciler must not take for trouble: "snapshot"
    # while a snapshot of it is taken (its container is paused). Cleared at start.
    hold: str | None = None
    seq: int = 0  # counts status changes: events and webhooks carry it, in order
    error: ErrorInfo | None = None
    progress: Progress | None = None
    restore: RestoreReport | None = None
    probes: list[ProbeResult] | None = None
    verdict: Literal["pass", "warn", "fail"] | None = None
    ready_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def initial_database(self) -> str:
        """The database that exists before the restore."""
        return "postgres" if self.creates_databases else self.database

    @property
    def connection_url(self) -> str | None:
        if self.status != Status.READY or self.port is None:
            return None
        host = self.url_host or self.host
        return f"postgresql://{self.user}:{self.password}@{host}:{self.port}/{self.database}"


class Snapshot(BaseModel):
    """A restored (or saved) sandbox's data, kept so copies start in about a second.

    Cache snapshots have a ``key`` (the backups' checksums, the image, the options) and are
    evicted least-recently-used; named snapshots are a user's, saved from a sandbox."""

    id: str
    image: str
    size_bytes: int
    key: str | None = None
    name: str | None = None
    # A cache snapshot a `fresh` restore replaced: found by no create, kept while live
    # sandboxes reset to it, removed with the last of them (the id of its replacement).
    replaced_by: str | None = None
    owner: str = "admin"
    backups: list[str] = Field(default_factory=list)
    backup_sha256: list[str] = Field(default_factory=list)
    postgres_version: int
    database: str
    creates_databases: bool = False
    source_sandbox: str | None = None
    restore: RestoreReport | None = None
    probes: list[ProbeResult] | None = None
    verdict: Literal["pass", "warn", "fail"] | None = None
    masking: MaskingReport | None = None  # a masked sandbox's: every copy is masked
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime = Field(default_factory=utcnow)
