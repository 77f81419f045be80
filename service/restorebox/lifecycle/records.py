"""What a create asks for, and the sandbox record it makes: names, credentials, images."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from restorebox.masking.policy import MaskingPolicy
from restorebox.models import Assertion, Progress, Sandbox, Snapshot, Status, utcnow
from restorebox.restore.plan import RestorePlan, database_for
from restorebox.settings import Settings

SANDBOX_USER = "restorebox"
# The principal drills' sandboxes belong to (drills/runner): nobody is handed them, and
# they never take an interactive create's restore slot (drills have their own limit).
DRILLS_OWNER = "restorebox-drills"


@dataclass
class CreateRequest:
    ttl_seconds: int | None = None
    postgres: int | None = None
    backups: list[str] = field(default_factory=list)
    database: str | None = None
    on_error: Literal["stop", "continue"] = "stop"
    probes: list[str] | None = None
    assertions: list[Assertion] = field(default_factory=list)
    keep_on_failure: bool = False
    owner: str = "admin"
    profile: str = "auto"
    snapshot: str | None = None  # a snapshot to copy (id or name) instead of backups
    fresh: bool = False  # restore from the backups even if a snapshot holds them
    keep_snapshot: bool = True  # a one-off check (False) leaves no snapshot behind
    # "none", a policy object, a policy file's name; None: the dump's own labels apply
    masking: str | dict[str, Any] | None = None


def database_name_for(backups: list[str]) -> str:
    """'dumps/App_Data-2025.sql.gz' -> 'app_data_2025'; no backup -> 'sandbox'."""
    if not backups:
        return "sandbox"
    stem = backups[0].rsplit("/", 1)[-1]
    stem = re.sub(
        r"(\.(sql|dump|backup|bak|tar|pgdump|custom|dir|gz|zst|lz4|pgsql))+$",
        "",
        stem,
        flags=re.IGNORECASE,
    )
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")[:63]
    if not name or not name[0].isalpha():
        name = f"db_{name}"[:63]
    return name if name not in ("postgres", "template0", "template1") else f"{name}_copy"


def unmet_by_snapshot(request: CreateRequest, snapshot: Snapshot) -> list[str]:
    """The request's options that a copy of ``snapshot`` cannot honour (it is restored
    and probed already): each would otherwise be silently ignored."""
    unmet = []
    if request.postgres is not None and request.postgres != snapshot.postgres_version:
        unmet.append(f"postgres {request.postgres} (the snapshot is {snapshot.postgres_version})")
    if request.database is not None and request.database != snapshot.database:
        unmet.append(f"database {request.database!r} (the snapshot's is {snapshot.database!r})")
    if request.assertions:
        unmet.append("assertions")
    if request.probes is not None:
        unmet.append("probes")
    if request.profile != "auto":
        unmet.append("profile")
    if request.on_error != "stop":
        unmet.append("on_error")
    if request.fresh:
        unmet.append("fresh")
    if request.masking is not None:
        unmet.append("masking (a copy is masked as its snapshot was)")
    return unmet


def new_record(
    settings: Settings,
    request: CreateRequest,
    ttl: int,
    plan: RestorePlan | None,
    snapshot: Snapshot | None,
    sandbox_id: str | None = None,
    masking: MaskingPolicy | None = None,
) -> Sandbox:
    """The record of a sandbox a create asks for (``plan`` when its backups are known,
    ``snapshot`` when it is a copy); fresh credentials, status creating."""
    major = plan.major if plan else request.postgres
    if snapshot is not None:
        major = snapshot.postgres_version
    image, platform_image = (None, False)
    if major is not None:
        profile = plan.profile.name if plan and plan.profile else None
        image, platform_image = settings.image_for(major, profile)
    database = request.database or database_name_for(request.backups)
    if plan is not None:
        database = database_for(plan, request.database) or database
    if snapshot is not None:
        database = snapshot.database
    now = utcnow()
    return Sandbox(
        id=sandbox_id or secrets.token_hex(6),
        status=Status.CREATING,
        owner=request.owner,
        postgres_version=major,
        image=image,
        platform_image=platform_image,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        user=SANDBOX_USER,
        password=secrets.token_urlsafe(24),
        database=database,
        creates_databases=bool(plan and plan.databases)
        or bool(snapshot and snapshot.creates_databases),
        database_requested=request.database,
        host=settings.connect_host,
        url_host=settings.url_host,
        backups=list(snapshot.backups if snapshot else request.backups),
        snapshot_id=snapshot.id if snapshot else None,
        from_snapshot=snapshot is not None,
        fresh=request.fresh,
        keep_snapshot=request.keep_snapshot,
        on_error=request.on_error,
        profile_requested=request.profile,
        probes_requested=request.probes,
        assertions=request.assertions,
        keep_on_failure=request.keep_on_failure,
        masking_requested=request.masking,
        masking_policy=masking,
        progress=Progress(phase="queued" if plan or snapshot else "inspecting"),
    )
