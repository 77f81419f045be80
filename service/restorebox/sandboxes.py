"""Sandbox use-cases: create, read, extend, delete, expire, reconcile. Nothing here knows
HTTP. The pieces: ``transitions`` (the state machine, the only writer of records),
``provisioning`` (the pipeline on worker threads), ``reconciler`` (state vs engine)."""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from .backups import Catalog
from .errors import (
    EngineUnavailable,
    HotCopyFailed,
    InvalidRequest,
    SandboxConflict,
    SandboxNotFound,
    SnapshotNotFound,
    TooManySandboxes,
)
from .hot_copies import HotCopies
from .metrics import Metrics
from .models import Assertion, Progress, Sandbox, Snapshot, Status, utcnow
from .principals import ADMIN, Principal
from .provisioning import Provisioner, remove_containers
from .reconciler import Reconciler
from .restore.plan import RestorePlan, database_for, make_plan
from .runtime import Runtime
from .settings import Settings
from .snapshots import SnapshotCache, SnapshotStore
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
    snapshot: str | None = None  # a snapshot to copy (id or name) instead of backups
    fresh: bool = False  # restore from the backups even if a snapshot holds them
    keep_snapshot: bool = True  # a one-off check (False) leaves no snapshot behind


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
    return unmet


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
        # Holds a stopped service left: nothing holds anything before the first request.
        self.transitions.release_all_holds()
        self.metrics = Metrics()
        self.transitions.subscribe(self.metrics.observe)
        self.snapshots = SnapshotCache(
            SnapshotStore(settings.snapshot_file),
            runtime,
            settings,
            instance,
            referenced=self._referenced_snapshots,
            release=lambda snapshot_id: self.hot.release(snapshot_id),
        )
        self.provisioner = Provisioner(
            settings, self.transitions, runtime, catalog, instance, self.snapshots, self.metrics
        )
        self.hot = HotCopies(
            settings.hot_copies,
            self.transitions,
            settings.max_sandboxes,
            make=self._make_hot,
            discard=self._discard_hot,
        )
        self.metrics.watch_state(
            lambda: self.store.list(set(LIVE)), lambda: self.snapshots.store.list()
        )
        self._deleting: set[str] = set()
        self._lock = threading.Lock()
        self.reconciler = Reconciler(
            self.transitions,
            runtime,
            self.provisioner,
            instance,
            busy=self._busy,
            finish_delete=self._finish_delete,
            snapshots=self.snapshots.store,
            taking=self.snapshots.taking,
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
        snapshot = self._snapshot_for(request)
        if snapshot is not None:
            return self._record_and_submit(request, ttl, None, snapshot)
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
        return self._record_and_submit(request, ttl, plan, None)

    def _snapshot_for(self, request: CreateRequest) -> Snapshot | None:
        if request.snapshot is None:
            return None
        if request.backups:
            raise InvalidRequest("give either backup or snapshot, not both")
        snapshot = self.snapshots.store.get(request.snapshot)
        named_elsewhere = snapshot.name is not None and snapshot.owner != request.owner
        if named_elsewhere and request.owner not in self.settings.admins:
            raise SnapshotNotFound(f"no snapshot {request.snapshot!r}")
        unmet = unmet_by_snapshot(request, snapshot)
        if unmet:
            raise InvalidRequest(
                f"a copy of snapshot {snapshot.id} is what it was when taken, so it cannot "
                f"honour {', '.join(unmet)}; leave {'it' if len(unmet) == 1 else 'them'} out, "
                "or create from the backups instead",
                fields=unmet,
            )
        return snapshot

    def _new_record(
        self,
        request: CreateRequest,
        ttl: int,
        plan: RestorePlan | None,
        snapshot: Snapshot | None,
        sandbox_id: str | None = None,
    ) -> Sandbox:
        major = plan.major if plan else request.postgres
        if snapshot is not None:
            major = snapshot.postgres_version
        image, platform_image = (None, False)
        if major is not None:
            profile = plan.profile.name if plan and plan.profile else None
            image, platform_image = self.settings.image_for(major, profile)
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
            host=self.settings.connect_host,
            url_host=self.settings.url_host,
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
            progress=Progress(phase="queued" if plan or snapshot else "inspecting"),
        )

    def _record_and_submit(
        self,
        request: CreateRequest,
        ttl: int,
        plan: RestorePlan | None,
        snapshot: Snapshot | None,
    ) -> Sandbox:
        sandbox = self._new_record(request, ttl, plan, snapshot)
        claimed = self._claim_hot(request, sandbox, plan, snapshot)
        if claimed is not None:
            return claimed
        major = sandbox.postgres_version
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
            raise TooManySandboxes.at(self.settings.max_sandboxes)
        log.info(
            "sandbox requested",
            extra={"sandbox": sandbox.id, "postgres": major, "backups": request.backups},
        )
        source = "snapshot" if request.snapshot else ("backup" if request.backups else "empty")
        self.metrics.creates.labels(source).inc()
        if snapshot is not None:
            plan = RestorePlan(snapshot.postgres_version, (), ())
        self.provisioner.submit(sandbox.id, plan)
        return sandbox

    # -- hot copies -------------------------------------------------------------------
    def _claim_hot(
        self,
        request: CreateRequest,
        sandbox: Sandbox,
        plan: RestorePlan | None,
        snapshot: Snapshot | None,
    ) -> Sandbox | None:
        """A hot copy made into the requested sandbox, when the request would copy the
        snapshot hot copies are kept of (see ``hot_copies``)."""
        if self.hot.size == 0 or request.fresh or self._closing:
            return None
        if snapshot is None and plan is not None:  # a cache hit, seen before the worker would
            snapshot = self.snapshots.find(self.snapshots.key_for(sandbox, plan.backups))
        if snapshot is None:
            return None
        claimed = self.hot.claim(snapshot, sandbox)
        if claimed is None:
            return None
        self.snapshots.store.touch(snapshot)
        self.metrics.creates.labels("snapshot" if request.snapshot else "backup").inc()
        if not request.snapshot:
            self.metrics.cache_hits.inc()
        self.provisioner.prepare_reset_later(claimed.id)
        return claimed

    def _make_hot(self, snapshot: Snapshot, sandbox_id: str) -> None:
        """Start a hot copy of ``snapshot`` named ``sandbox_id``; return once it is ready."""
        request = CreateRequest(snapshot=snapshot.id)
        sandbox = self._new_record(
            request, self.settings.max_ttl_seconds, None, snapshot, sandbox_id
        ).model_copy(update={"hot": True})
        self.provisioner.register(sandbox_id)
        done = self.provisioner.done_event(sandbox_id)
        try:
            self.store.put(sandbox)
        except BaseException:
            self.provisioner.unregister(sandbox_id)
            raise
        self.provisioner.submit(sandbox_id, RestorePlan(snapshot.postgres_version, (), ()))
        if done is not None:
            done.wait()
        made = self.store.get(sandbox_id)
        if made.status != Status.READY:
            self._discard_hot(sandbox_id)
            reason = made.error.message if made.error else made.status.value
            raise HotCopyFailed(f"a hot copy of snapshot {snapshot.id} failed: {reason}")

    def _discard_hot(self, sandbox_id: str) -> None:
        """Delete a hot copy; one claimed by now is a user's sandbox and stays."""
        try:
            sandbox = self.store.get(sandbox_id)
        except SandboxNotFound:
            return
        if sandbox.hot and not sandbox.status.final:
            self._delete(sandbox, Status.DELETED)

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
        if sandbox.hot or not principal.may_see(sandbox):
            # Someone else's sandbox does not exist for this principal.
            raise SandboxNotFound(f"no sandbox with id {sandbox_id!r}", id=sandbox_id)
        return sandbox

    def list_all(self, include_gone: bool = False, principal: Principal = ADMIN) -> list[Sandbox]:
        sandboxes = self.store.list(None if include_gone else set(LIVE))
        return [s for s in sandboxes if not s.hot and principal.may_see(s)]

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

    # -- snapshots ------------------------------------------------------------------
    def reset(self, sandbox_id: str, principal: Principal = ADMIN) -> Sandbox:
        """Back to the restored state (its snapshot), keeping the URL."""
        sandbox = self.get(sandbox_id, principal)
        if sandbox.status != Status.READY:
            raise SandboxConflict(f"sandbox {sandbox_id} is {sandbox.status.value}, not ready")
        if sandbox.snapshot_id is None:
            raise SandboxConflict(
                f"sandbox {sandbox_id} has no snapshot to go back to (the cache is off, or "
                "it is an empty sandbox)"
            )
        try:
            self.snapshots.store.get(sandbox.snapshot_id)
        except SnapshotNotFound:
            raise SandboxConflict(
                f"the snapshot sandbox {sandbox_id} would go back to is gone"
            ) from None
        self.provisioner.register(sandbox_id)
        moved = self.transitions.move(
            sandbox_id,
            Status.RESETTING,
            when=lambda now: now.hold is None,
            progress=Progress(phase="resetting"),
        )
        if moved.status != Status.RESETTING:
            self.provisioner.unregister(sandbox_id)
            doing = f"held ({moved.hold})" if moved.hold else moved.status.value
            raise SandboxConflict(f"sandbox {sandbox_id} is {doing}; try again when ready")
        self.provisioner.submit_reset(sandbox_id)
        return moved

    def save_snapshot(self, sandbox_id: str, name: str, principal: Principal = ADMIN) -> Snapshot:
        """Keep a sandbox's current state under ``name``; copies start from it."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
            raise InvalidRequest("a snapshot name is 1-63 letters, digits, _ . or -")
        sandbox = self.get(sandbox_id, principal)
        if sandbox.status != Status.READY:
            raise SandboxConflict(f"sandbox {sandbox_id} is {sandbox.status.value}, not ready")
        try:
            self.snapshots.store.get(name)
        except SnapshotNotFound:
            pass
        else:
            raise SandboxConflict(f"a snapshot named {name!r} exists already")
        # Held while it is taken: its container is paused for the commit, which the
        # reconciler must not take for a vanished one.
        with self.transitions.held(sandbox_id, "snapshot") as held:
            saved = self.snapshots.take(held, name=name, owner=principal.name)
        self.snapshots.evict_quietly()
        return saved

    def list_snapshots(self, principal: Principal = ADMIN) -> list[Snapshot]:
        return [s for s in self.snapshots.store.list() if self._may_see(s, principal)]

    def get_snapshot(self, ref: str, principal: Principal = ADMIN) -> Snapshot:
        snapshot = self.snapshots.store.get(ref)
        if not self._may_see(snapshot, principal):
            raise SnapshotNotFound(f"no snapshot {ref!r}")
        return snapshot

    def delete_snapshot(self, ref: str, principal: Principal = ADMIN) -> None:
        snapshot = self.get_snapshot(ref, principal)
        if snapshot.name is None and not principal.admin:
            raise SnapshotNotFound(f"no snapshot {ref!r}")  # the cache is the admins'
        self.snapshots.delete(snapshot.id)

    def _referenced_snapshots(self) -> set[str]:
        # Hot copies do not hold their snapshot: they are removed before it (``release``).
        return {s.snapshot_id for s in self.store.list(set(LIVE)) if s.snapshot_id and not s.hot}

    @staticmethod
    def _may_see(snapshot: Snapshot, principal: Principal) -> bool:
        return principal.admin or snapshot.name is None or snapshot.owner == principal.name

    # -- delete / expire ------------------------------------------------------------
    def delete(
        self, sandbox_id: str, final: Status = Status.DELETED, principal: Principal = ADMIN
    ) -> Sandbox:
        """Mark it deleting (so a crash leaves a record the reconciler finishes), stop its
        worker, remove its container, mark it final. Raises EngineUnavailable when the
        engine refuses; the sandbox then stays ``deleting`` and is finished later."""
        return self._delete(self.get(sandbox_id, principal), final)

    def _delete(
        self, sandbox: Sandbox, final: Status, when: Callable[[Sandbox], bool] | None = None
    ) -> Sandbox:
        """``when``: a condition checked on the record under the state lock (an expiry
        that an extend overtook does not happen)."""
        if sandbox.status.final:
            return sandbox
        with self._lock:
            self._deleting.add(sandbox.id)
        try:
            if when is not None and not when(self.store.get(sandbox.id)):
                return self.store.get(sandbox.id)
            self.provisioner.cancel(sandbox.id)
            moved = self.transitions.move(sandbox.id, Status.DELETING, when=when, ends_as=final)
            if moved.status != Status.DELETING:
                return moved
            return self._finish_delete(moved)
        finally:
            with self._lock:
                self._deleting.discard(sandbox.id)

    def _finish_delete(self, sandbox: Sandbox) -> Sandbox:
        remove_containers(self.runtime, self.instance, sandbox)
        final = sandbox.ends_as or Status.DELETED
        log.info("sandbox removed", extra={"sandbox": sandbox.id, "status": final.value})
        gone = self.transitions.move(sandbox.id, final, container_id=None)
        if sandbox.snapshot_id and not sandbox.hot:
            self._drop_if_replaced(sandbox.snapshot_id)
        return gone

    def _drop_if_replaced(self, snapshot_id: str) -> None:
        """A snapshot a `fresh` restore replaced goes with the last sandbox using it."""
        try:
            snapshot = self.snapshots.store.get(snapshot_id)
        except SnapshotNotFound:
            return
        if snapshot.replaced_by is not None:
            self.snapshots.evict_quietly()

    def _busy(self) -> set[str]:
        with self._lock:
            return set(self._deleting)

    def expire_due(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        expired = []

        def due(sandbox: Sandbox) -> bool:
            # Read again before acting: an extend or `protected` set since the list was
            # read wins (checked under the state lock as the delete begins).
            busy = sandbox.status == Status.DELETING or sandbox.status.final or bool(sandbox.hold)
            return not (busy or sandbox.protected or sandbox.hot) and sandbox.expires_at <= now

        for sandbox in self.store.list(set(LIVE)):
            if not due(sandbox):
                continue
            if self._delete(sandbox, Status.EXPIRED, when=due).status == Status.EXPIRED:
                expired.append(sandbox.id)
        return expired

    # -- reconciliation and shutdown ----------------------------------------------------
    def reconcile(self, at_start: bool = False) -> dict[str, list[str]]:
        outcome = self.reconciler.run(at_start=at_start)
        outcome["removed"] += self.hot.leftovers(self.store.list(set(LIVE)))
        for action, items in outcome.items():
            if items:
                self.metrics.repairs.labels(action).inc(len(items))
        return outcome

    def shutdown(self) -> None:
        """Stop in-flight provisioning (sandboxes failed as ``cancelled``, containers
        removed); ready sandboxes keep running and are picked up by the next start."""
        self._closing = True
        self.hot.close()  # hot copies are the service's own: they go with it
        self.provisioner.shutdown()
        self.snapshots.store.close()
