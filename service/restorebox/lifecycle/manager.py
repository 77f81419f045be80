"""Sandbox use-cases: create, read, extend, delete, expire, reconcile. Nothing here knows
HTTP. ``SandboxManager`` composes the pieces explicitly, in the order each needs the ones
before it: ``transitions`` (the state machine, the only writer of records), the snapshot
cache, ``provisioning`` (the pipeline on worker threads), ``deletions``, hot copies and
the ``reconciler`` (state against engine)."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from functools import partial

from restorebox.auth.principals import ADMIN, Principal
from restorebox.backups import Catalog
from restorebox.errors import (
    EngineUnavailable,
    InvalidRequest,
    SandboxConflict,
    SandboxNotFound,
    SnapshotNotFound,
    TooManySandboxes,
)
from restorebox.lifecycle.deletions import Deletions
from restorebox.lifecycle.disk_guard import DiskGuard
from restorebox.lifecycle.hot_copies import HotCopies, HotCopyMaker, SnapshotUse
from restorebox.lifecycle.provisioning import Provisioner
from restorebox.lifecycle.reconciler import Reconciler
from restorebox.lifecycle.records import CreateRequest, new_record, unmet_by_snapshot
from restorebox.lifecycle.store import LIVE, Store
from restorebox.lifecycle.transitions import Transitions
from restorebox.masking.key import load_key
from restorebox.masking.policy import MaskingPolicy, resolve_for_plan
from restorebox.models import Progress, Sandbox, Snapshot, Status, utcnow
from restorebox.notify.metrics import Metrics
from restorebox.restore.plan import RestorePlan, make_plan
from restorebox.runtime import Runtime
from restorebox.settings import Settings
from restorebox.snapshots.cache import SnapshotCache
from restorebox.snapshots.store import SnapshotStore

log = logging.getLogger("restorebox.lifecycle.manager")

INSPECT_GRACE_SECONDS = 2.0


class SandboxManager:
    def __init__(
        self, settings: Settings, store: Store, runtime: Runtime, catalog: Catalog, instance: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.catalog = catalog
        self.instance = instance
        # The composition, in the order each piece needs the ones before it.
        self.transitions = Transitions(store)
        # Holds a stopped service left: nothing holds anything before the first request.
        self.transitions.release_all_holds()
        self.metrics = Metrics()
        self.transitions.subscribe(self.metrics.observe)
        use = SnapshotUse(store)
        self.snapshots = SnapshotCache(
            SnapshotStore(settings.snapshot_file),
            runtime,
            settings,
            instance,
            referenced=use.in_use,
            release=use.release,
        )
        masking_key = load_key(settings.masking_key.get_secret_value(), settings.state_dir)
        self.snapshots.masking_fingerprint = masking_key.fingerprint
        self.provisioner = Provisioner(
            settings,
            self.transitions,
            runtime,
            catalog,
            instance,
            self.snapshots,
            self.metrics,
            masking_key,
        )
        self.deletions = Deletions(
            self.transitions, runtime, instance, self.provisioner, self.snapshots
        )
        maker = HotCopyMaker(settings, store, self.provisioner, self.deletions)
        self.hot = HotCopies(
            settings.hot_copies,
            self.transitions,
            settings.max_sandboxes,
            make=maker.make,
            discard=maker.discard,
        )
        use.hot_copies = self.hot  # a snapshot's hot copies go before it
        self.metrics.watch_state(
            partial(store.list, set(LIVE)), self.snapshots.store.list, self.snapshots.footprint
        )
        self.disk_guard = DiskGuard(
            settings.sandbox_disk_bytes, self.transitions, runtime, instance
        )
        self.reconciler = Reconciler(
            self.transitions,
            runtime,
            self.provisioner,
            instance,
            self.deletions,
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
        masking = None
        if all(b is not None for b in known):
            plan = make_plan(
                [b for b in known if b is not None],
                self.settings.majors,
                request.postgres,
                self.settings.default_major(),
                request.profile,
            )
            plan = self.provisioner.follow_extensions(plan, request.postgres)
            self.provisioner.check_extensions(plan, request.on_error)
            # A policy that does not fit the dump is refused here, before any container.
            masking, _ = resolve_for_plan(request.masking, plan, self.settings.backups_dir)
        return self._record_and_submit(request, ttl, plan, None, masking)

    def _snapshot_for(self, request: CreateRequest) -> Snapshot | None:
        if request.snapshot is None:
            return None
        if request.backups:
            raise InvalidRequest("give either backup or snapshot, not both")
        snapshot = self.snapshots.store.get(request.snapshot)
        named_elsewhere = snapshot.name is not None and snapshot.owner != request.owner
        if named_elsewhere and request.owner not in self.settings.admins:
            raise SnapshotNotFound(f"no snapshot {request.snapshot!r}")
        if not self.snapshots.available(snapshot):
            raise SnapshotNotFound(
                f"snapshot {snapshot.id}'s data is not here any more (kept in a store that is "
                "now off or gone, or an image removed by hand); delete it and restore again",
                snapshot=snapshot.id,
            )
        unmet = unmet_by_snapshot(request, snapshot)
        if unmet:
            raise InvalidRequest(
                f"a copy of snapshot {snapshot.id} is what it was when taken, so it cannot "
                f"honour {', '.join(unmet)}; leave {'it' if len(unmet) == 1 else 'them'} out, "
                "or create from the backups instead",
                fields=unmet,
            )
        return snapshot

    def _record_and_submit(
        self,
        request: CreateRequest,
        ttl: int,
        plan: RestorePlan | None,
        snapshot: Snapshot | None,
        masking: MaskingPolicy | None = None,
    ) -> Sandbox:
        sandbox = new_record(self.settings, request, ttl, plan, snapshot, masking=masking)
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
        return self.deletions.delete(self.get(sandbox_id, principal), final)

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
            if self.deletions.delete(sandbox, Status.EXPIRED, when=due).status == Status.EXPIRED:
                expired.append(sandbox.id)
        return expired

    # -- reconciliation and shutdown ----------------------------------------------------
    def reconcile(self, at_start: bool = False) -> dict[str, list[str]]:
        outcome = self.reconciler.run(at_start=at_start)
        outcome["failed"] += self.disk_guard.check()
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
