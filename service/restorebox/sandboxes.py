"""Sandbox use-cases: create, read, extend, delete, expire, reconcile. Nothing here knows
HTTP. The pieces: ``transitions`` (the state machine, the only writer of records),
``provisioning`` (the pipeline on worker threads), ``reconciler`` (state vs engine)."""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from .backups import Catalog
from .errors import (
    EngineUnavailable,
    InvalidRequest,
    SandboxConflict,
    SandboxNotFound,
    TooManySandboxes,
)
from .models import Assertion, Progress, Sandbox, Status, utcnow
from .principals import ADMIN, Principal
from .provisioning import Provisioner, remove_containers
from .reconciler import Reconciler
from .restore.plan import RestorePlan, database_for, make_plan
from .runtime import Runtime
from .settings import Settings
from .store import LIVE, Store
from .transitions import Transitions

log = logging.getLogger("restorebox.sandboxes")

SANDBOX_USER = "restorebox"
INSPECT_GRACE_SECONDS = 2.0


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


class SandboxManager:
    def __init__(
        self, settings: Settings, store: Store, runtime: Runtime, catalog: Catalog, instance: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.catalog = catalog
        self.instance = instance
        self.transitions = Transitions(store)
        self.provisioner = Provisioner(settings, self.transitions, runtime, catalog, instance)
        self._deleting: set[str] = set()
        self._lock = threading.Lock()
        self.reconciler = Reconciler(
            self.transitions,
            runtime,
            self.provisioner,
            instance,
            busy=self._busy,
            finish_delete=self._finish_delete,
        )
        self._closing = False

    # -- create -------------------------------------------------------------------
    def create(self, request: CreateRequest) -> Sandbox:
        """Validate, record and start provisioning. Bad input raises before anything runs;
        backups not described yet are inspected by the worker (phase ``inspecting``)."""
        ttl = request.ttl_seconds or self.settings.default_ttl_seconds
        if ttl > self.settings.max_ttl_seconds:
            raise InvalidRequest(
                f"ttl_seconds {ttl} is over the maximum of {self.settings.max_ttl_seconds}"
            )
        if request.database is not None and not re.fullmatch(
            r"[A-Za-z_][A-Za-z0-9_]{0,62}", request.database
        ):
            raise InvalidRequest(
                "database must be 1-63 letters, digits or _, not starting with a digit"
            )
        if len(request.backups) > 20:
            raise InvalidRequest("at most 20 backups can be restored into one sandbox")
        if request.postgres is not None and request.postgres not in self.settings.majors:
            raise InvalidRequest(
                f"PostgreSQL {request.postgres} is not configured; available: "
                + ", ".join(map(str, self.settings.majors)),
                postgres=request.postgres,
            )
        # Bad names and oversized backups are 4xx at once; a backup not described yet gets
        # a short grace (most bad files are refused within milliseconds, so they are 4xx
        # too); past it, the worker goes on inspecting it (phase "inspecting").
        grace = time.monotonic() + INSPECT_GRACE_SECONDS
        known = [
            self.catalog.known(name, wait=max(0.0, grace - time.monotonic()))
            for name in request.backups
        ]
        plan: RestorePlan | None = None
        if all(b is not None for b in known):
            plan = make_plan(
                [b for b in known if b is not None],
                self.settings.majors,
                request.postgres,
                self.settings.default_major(),
                request.profile,
            )
        major = plan.major if plan else request.postgres
        image, platform_image = (None, False)
        if major is not None:
            profile = plan.profile.name if plan and plan.profile else None
            image, platform_image = self.settings.image_for(major, profile)
        database = request.database or database_name_for(request.backups)
        if plan is not None:
            database = database_for(plan, request.database) or database
        now = utcnow()
        sandbox = Sandbox(
            id=secrets.token_hex(6),
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
            creates_databases=bool(plan and plan.databases),
            database_requested=request.database,
            host=self.settings.connect_host,
            url_host=self.settings.url_host,
            backups=list(request.backups),
            on_error=request.on_error,
            profile_requested=request.profile,
            probes_requested=request.probes,
            assertions=request.assertions,
            keep_on_failure=request.keep_on_failure,
            progress=Progress(phase="queued" if plan else "inspecting"),
        )
        if self._closing:
            raise EngineUnavailable("the service is shutting down")
        self.provisioner.register(sandbox.id)
        try:
            inserted = self.store.insert_if_below(sandbox, self.settings.max_sandboxes)
        except BaseException:
            self.provisioner.unregister(sandbox.id)
            raise
        if not inserted:
            self.provisioner.unregister(sandbox.id)
            raise TooManySandboxes(
                f"{self.settings.max_sandboxes} sandboxes exist already (the maximum; failed "
                "sandboxes whose container is kept count too); delete one or wait for one "
                "to expire"
            )
        log.info(
            "sandbox requested",
            extra={"sandbox": sandbox.id, "postgres": major, "backups": request.backups},
        )
        self.provisioner.submit(sandbox.id, plan)
        return sandbox

    def wait(self, sandbox_id: str, timeout: float | None = None) -> Sandbox:
        """Block until the sandbox is made (ready or failed), at most ``timeout`` seconds."""
        done = self.provisioner.done_event(sandbox_id)
        if done is not None:
            done.wait(timeout)
        return self.store.get(sandbox_id)

    def is_settled(self, sandbox_id: str) -> bool:
        """No worker is making this sandbox any more."""
        return self.provisioner.done_event(sandbox_id) is None

    # -- read / update ------------------------------------------------------------
    def get(self, sandbox_id: str, principal: Principal = ADMIN) -> Sandbox:
        sandbox = self.store.get(sandbox_id)
        if not principal.may_see(sandbox):
            # Someone else's sandbox does not exist for this principal.
            raise SandboxNotFound(f"no sandbox with id {sandbox_id!r}", id=sandbox_id)
        return sandbox

    def list_all(self, include_gone: bool = False, principal: Principal = ADMIN) -> list[Sandbox]:
        sandboxes = self.store.list(None if include_gone else set(LIVE))
        return [s for s in sandboxes if principal.may_see(s)]

    def patch(
        self,
        sandbox_id: str,
        ttl_seconds: int | None,
        protected: bool | None,
        principal: Principal = ADMIN,
    ) -> Sandbox:
        sandbox = self.get(sandbox_id, principal)
        if sandbox.status.final or sandbox.status == Status.DELETING:
            raise SandboxConflict(f"sandbox {sandbox_id} is {sandbox.status.value}")
        changes: dict[str, object] = {}
        if ttl_seconds is not None:
            if ttl_seconds > self.settings.max_ttl_seconds:
                raise InvalidRequest(
                    f"ttl_seconds {ttl_seconds} is over the maximum of "
                    f"{self.settings.max_ttl_seconds}"
                )
            changes["expires_at"] = utcnow() + timedelta(seconds=ttl_seconds)
        if protected is not None:
            changes["protected"] = protected
        return self.transitions.update(sandbox_id, **changes)

    # -- delete / expire ------------------------------------------------------------
    def delete(
        self, sandbox_id: str, final: Status = Status.DELETED, principal: Principal = ADMIN
    ) -> Sandbox:
        """Mark it deleting (so a crash leaves a record the reconciler finishes), stop its
        worker, remove its container, mark it final. Raises EngineUnavailable when the
        engine refuses; the sandbox then stays ``deleting`` and is finished later."""
        sandbox = self.get(sandbox_id, principal)
        if sandbox.status.final:
            return sandbox
        with self._lock:
            self._deleting.add(sandbox_id)
        try:
            self.provisioner.cancel(sandbox_id)
            sandbox = self.transitions.move(sandbox_id, Status.DELETING, ends_as=final)
            return self._finish_delete(sandbox)
        finally:
            with self._lock:
                self._deleting.discard(sandbox_id)

    def _finish_delete(self, sandbox: Sandbox) -> Sandbox:
        remove_containers(self.runtime, self.instance, sandbox)
        final = sandbox.ends_as or Status.DELETED
        log.info("sandbox removed", extra={"sandbox": sandbox.id, "status": final.value})
        return self.transitions.move(sandbox.id, final, container_id=None)

    def _busy(self) -> set[str]:
        with self._lock:
            return set(self._deleting)

    def expire_due(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        expired = []
        for sandbox in self.store.list(set(LIVE)):
            if sandbox.status == Status.DELETING or sandbox.protected:
                continue
            if sandbox.expires_at <= now:
                self.delete(sandbox.id, final=Status.EXPIRED)
                expired.append(sandbox.id)
        return expired

    # -- reconciliation and shutdown ----------------------------------------------------
    def reconcile(self, at_start: bool = False) -> dict[str, list[str]]:
        return self.reconciler.run(at_start=at_start)

    def shutdown(self) -> None:
        """Stop in-flight provisioning (sandboxes failed as ``cancelled``, containers
        removed); ready sandboxes keep running and are picked up by the next start."""
        self._closing = True
        self.provisioner.shutdown()
