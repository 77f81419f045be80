"""Deleting sandboxes: recorded as ``deleting`` first (a crash leaves a record the
reconciler finishes), the worker stopped, the containers removed, the final state written.
Deletes in flight are known by id, so the reconciler leaves them to their request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from restorebox.errors import SnapshotNotFound
from restorebox.lifecycle.provisioning import Provisioner, remove_containers
from restorebox.lifecycle.transitions import Transitions
from restorebox.models import Sandbox, Status
from restorebox.runtime import Runtime
from restorebox.snapshots.cache import SnapshotCache

log = logging.getLogger("restorebox.lifecycle.deletions")


class Deletions:
    def __init__(
        self,
        transitions: Transitions,
        runtime: Runtime,
        instance: str,
        provisioner: Provisioner,
        snapshots: SnapshotCache,
    ) -> None:
        self.transitions = transitions
        self.runtime = runtime
        self.instance = instance
        self.provisioner = provisioner
        self.snapshots = snapshots
        self._deleting: set[str] = set()
        self._lock = threading.Lock()

    def delete(
        self, sandbox: Sandbox, final: Status, when: Callable[[Sandbox], bool] | None = None
    ) -> Sandbox:
        """Delete ``sandbox`` as ``final`` (deleted or expired). ``when``: a condition
        checked on the record under the state lock (an expiry that an extend overtook does
        not happen). Raises EngineUnavailable when the engine refuses; the sandbox then
        stays ``deleting`` and is finished later."""
        if sandbox.status.final:
            return sandbox
        with self._lock:
            self._deleting.add(sandbox.id)
        try:
            if when is not None and not when(self.transitions.get(sandbox.id)):
                return self.transitions.get(sandbox.id)
            self.provisioner.cancel(sandbox.id)
            moved = self.transitions.move(sandbox.id, Status.DELETING, when=when, ends_as=final)
            if moved.status != Status.DELETING:
                return moved
            return self.finish(moved)
        finally:
            with self._lock:
                self._deleting.discard(sandbox.id)

    def finish(self, sandbox: Sandbox) -> Sandbox:
        """Remove the containers of a sandbox recorded ``deleting`` and make it final."""
        remove_containers(self.runtime, self.instance, sandbox)
        final = sandbox.ends_as or Status.DELETED
        log.info("sandbox removed", extra={"sandbox": sandbox.id, "status": final.value})
        gone = self.transitions.move(sandbox.id, final, container_id=None)
        if sandbox.snapshot_id and not sandbox.hot:
            self._drop_if_replaced(sandbox.snapshot_id)
        return gone

    def busy(self) -> set[str]:
        """Sandboxes a request is deleting right now."""
        with self._lock:
            return set(self._deleting)

    def _drop_if_replaced(self, snapshot_id: str) -> None:
        """A snapshot a `fresh` restore replaced goes with the last sandbox using it."""
        try:
            snapshot = self.snapshots.store.get(snapshot_id)
        except SnapshotNotFound:
            return
        if snapshot.replaced_by is not None:
            self.snapshots.evict_quietly()
