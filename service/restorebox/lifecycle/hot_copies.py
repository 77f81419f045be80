"""Hot copies: copies of the snapshot copied last, started ahead and waiting for a create.

A warm copy starts a container and a server: about a quarter of a second alone, but about
half a CPU-second of the machine, so ten asked for at once queue for the CPUs. With
``hot_copies`` set, the service keeps that many copies of the most recently copied
snapshot started (each with its own password and port, never the snapshot's); a create
that would copy that snapshot claims one instead, which is a record update and nothing
else. The pool refills once creates pause (``MadeAhead``), so a burst is not slowed by it.

A hot copy is a sandbox record marked ``hot``: the engine, the reconciler and ``gc`` see
an ordinary sandbox; the API, limits, expiry, metrics and webhooks see nothing until it is
claimed (then its id, password and port are the new sandbox's). A snapshot's hot copies go
before the snapshot does (eviction, delete, refresh) and when another snapshot becomes the
one copied last (twice in a row); the service removes them when it stops, and after a
crash the reconciler removes hot copies no pool holds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from restorebox.errors import HotCopyFailed, SandboxNotFound, TooManySandboxes
from restorebox.lifecycle.deletions import Deletions
from restorebox.lifecycle.provisioning import Provisioner
from restorebox.lifecycle.records import CreateRequest, new_record
from restorebox.lifecycle.store import LIVE, Store
from restorebox.lifecycle.transitions import Transitions
from restorebox.models import Sandbox, Snapshot, Status, utcnow
from restorebox.restore.plan import RestorePlan
from restorebox.runtime.made_ahead import MadeAhead
from restorebox.settings import Settings

log = logging.getLogger("restorebox.lifecycle.hot_copies")

# What a create decides about its sandbox; the rest (id, password, port, container, the
# snapshot's report) is the hot copy's own.
FROM_REQUEST = (
    "owner",
    "created_at",
    "expires_at",
    "backups",
    "database_requested",
    "fresh",
    "keep_snapshot",
    "on_error",
    "profile_requested",
    "probes_requested",
    "assertions",
    "keep_on_failure",
    "masking_requested",
    "masking_policy",
)


class HotCopies:
    """``make(snapshot, sandbox_id)`` starts a hot copy with that id and returns when it is
    ready (raising when it is not); ``discard(sandbox_id)`` deletes one."""

    def __init__(
        self,
        size: int,
        transitions: Transitions,
        limit: int,
        make: Callable[[Snapshot, str], None],
        discard: Callable[[str], None],
    ) -> None:
        self.size = size
        self._transitions = transitions
        self._limit = limit
        self._make = make
        self._discard = discard
        self._lock = threading.Lock()
        self._target: str | None = None
        self._candidate: str | None = None  # another snapshot, copied once since
        self._pool: MadeAhead[str] | None = None
        self._retiring: list[MadeAhead[str]] = []
        self._closed = False

    def claim(self, snapshot: Snapshot, request: Sandbox) -> Sandbox | None:
        """The sandbox ``request`` describes, made of a ready hot copy of ``snapshot``; or
        None (the caller copies as usual). Either way ``snapshot`` is now the one copied
        last: the pool keeps copies of it from the next quiet moment on."""
        if self.size == 0:
            return None
        fields: dict[str, Any] = {name: getattr(request, name) for name in FROM_REQUEST}
        with self._lock:
            if self._closed:
                return None
            pool = self._aim(snapshot)
            while pool is not None and (sandbox_id := pool.take()) is not None:
                try:
                    claimed = self._transitions.claim(
                        sandbox_id, self._limit, **fields, ready_at=utcnow()
                    )
                except TooManySandboxes:
                    self._discard_later(sandbox_id)  # it left the pool; nobody may claim it
                    raise
                if claimed is not None:
                    log.info(
                        "sandbox ready (hot copy)",
                        extra={"sandbox": sandbox_id, "snapshot": snapshot.id},
                    )
                    return claimed
                self._discard_later(sandbox_id)  # failed while it waited
        return None

    def ready_for(self, snapshot_id: str) -> int:
        with self._lock:
            pool = self._pool if self._target == snapshot_id else None
        return pool.ready() if pool is not None else 0

    def release(self, snapshot_id: str) -> None:
        """Remove the snapshot's hot copies (it is about to go); returns once they are gone."""
        with self._lock:
            pools = list(self._retiring)
            if self._target == snapshot_id and self._pool is not None:
                pools.append(self._pool)
                self._pool, self._target = None, None
        for pool in pools:
            pool.close()  # idempotent: a retiring pool may be closing on its thread too

    def leftovers(self, live: list[Sandbox]) -> list[str]:
        """Hot copies no pool holds (a crash, a failed make): the reconciler's to remove.
        ``live`` may be a moment old: ``discard`` reads the record again and leaves one
        claimed meanwhile alone."""
        with self._lock:  # a claim takes and claims under this lock: never caught mid-way
            held: set[str] = set()
            for pool in [*self._retiring, *([self._pool] if self._pool else [])]:
                held |= pool.reserved()
            stray = [s.id for s in live if s.hot and s.id not in held]
        for sandbox_id in stray:
            self._discard(sandbox_id)
        return stray

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = [*self._retiring, *([self._pool] if self._pool else [])]
            self._pool, self._target = None, None
        for pool in pools:
            pool.close()

    # -- internals (under the lock) -------------------------------------------------------
    def _aim(self, snapshot: Snapshot) -> MadeAhead[str] | None:
        """The pool of ``snapshot``'s copies. Another snapshot takes the pool over when it
        is copied twice in a row: work alternating between two does not churn them."""
        if self._pool is not None and self._target == snapshot.id:
            self._candidate = None
            return self._pool
        if self._pool is not None:
            if self._candidate != snapshot.id:
                self._candidate = snapshot.id
                return None
            self._retire(self._pool)
        self._candidate = None
        self._target = snapshot.id
        # Named by the pool, so a copy being made is "reserved" before its record exists;
        # the name is the sandbox id.
        self._pool = MadeAhead(
            lambda sandbox_id: self._made(snapshot, sandbox_id),
            self._discard,
            self.size,
            prefix="",
            what="a hot copy",
            wait_first=True,  # a create is under way
        )
        return self._pool

    def _made(self, snapshot: Snapshot, sandbox_id: str) -> str:
        self._make(snapshot, sandbox_id)
        return sandbox_id

    def _retire(self, pool: MadeAhead[str]) -> None:
        self._retiring.append(pool)

        def close() -> None:
            pool.close()
            with self._lock:
                if pool in self._retiring:
                    self._retiring.remove(pool)

        threading.Thread(target=close, name="hot-copies-retire", daemon=True).start()

    def _discard_later(self, sandbox_id: str) -> None:
        threading.Thread(
            target=self._discard, args=(sandbox_id,), name="hot-copies-discard", daemon=True
        ).start()


class HotCopyMaker:
    """How a hot copy is made and thrown away: a hidden sandbox record, copied from its
    snapshot by the provisioner like any copy, deleted like any sandbox."""

    def __init__(
        self, settings: Settings, store: Store, provisioner: Provisioner, deletions: Deletions
    ) -> None:
        self.settings = settings
        self.store = store
        self.provisioner = provisioner
        self.deletions = deletions

    def make(self, snapshot: Snapshot, sandbox_id: str) -> None:
        """Start a hot copy of ``snapshot`` named ``sandbox_id``; return once it is ready."""
        request = CreateRequest(snapshot=snapshot.id)
        ttl = self.settings.max_ttl_seconds
        sandbox = new_record(self.settings, request, ttl, None, snapshot, sandbox_id)
        sandbox = sandbox.model_copy(update={"hot": True})
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
            self.discard(sandbox_id)
            reason = made.error.message if made.error else made.status.value
            raise HotCopyFailed(f"a hot copy of snapshot {snapshot.id} failed: {reason}")

    def discard(self, sandbox_id: str) -> None:
        """Delete a hot copy; one claimed by now is a user's sandbox and stays."""
        try:
            sandbox = self.store.get(sandbox_id)
        except SandboxNotFound:
            return
        if sandbox.hot and not sandbox.status.final:
            self.deletions.delete(sandbox, Status.DELETED)


class SnapshotUse:
    """What the snapshot cache must know of sandboxes: which snapshots live sandboxes go
    back to on reset (never removed under them), and what was made ahead of a snapshot
    (its hot copies, removed before it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hot_copies: HotCopies | None = None  # set once made: they are copies of snapshots

    def in_use(self) -> set[str]:
        # Hot copies do not hold their snapshot: they are removed before it (``release``).
        live = self.store.list(set(LIVE))
        return {s.snapshot_id for s in live if s.snapshot_id and not s.hot}

    def release(self, snapshot_id: str) -> None:
        if self.hot_copies is not None:
            self.hot_copies.release(snapshot_id)
