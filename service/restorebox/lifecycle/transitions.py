"""The sandbox state machine: one table of allowed status changes, and the only code that
writes a sandbox record. Every write goes through ``Transitions``; a final state is final.

    creating -> restoring -> probing -> ready
        any in-progress state -> failed | deleting
    ready  -> resetting -> ready (back to its snapshot)
    ready  -> failed (container vanished) | deleting
    failed -> deleting
    deleting -> deleted | expired                      (final: nothing changes after)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from restorebox.errors import SandboxConflict
from restorebox.lifecycle.store import LIVE, Store
from restorebox.models import Sandbox, Status, utcnow

log = logging.getLogger("restorebox.lifecycle.transitions")

S = Status
Listener = Callable[[Sandbox, Sandbox], None]
ALLOWED: dict[Status, frozenset[Status]] = {
    S.CREATING: frozenset({S.RESTORING, S.PROBING, S.READY, S.FAILED, S.DELETING}),
    S.RESTORING: frozenset({S.PROBING, S.READY, S.FAILED, S.DELETING}),
    S.PROBING: frozenset({S.READY, S.FAILED, S.DELETING}),
    S.READY: frozenset({S.RESETTING, S.FAILED, S.DELETING}),
    S.RESETTING: frozenset({S.READY, S.FAILED, S.DELETING}),
    S.FAILED: frozenset({S.DELETING}),
    S.DELETING: frozenset({S.DELETED, S.EXPIRED}),
    S.DELETED: frozenset(),
    S.EXPIRED: frozenset(),
}


def allowed(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def occupies_slot(sandbox: Sandbox) -> bool:
    """Whether a sandbox counts toward ``max_sandboxes``: it holds, or may soon hold, a
    container. One definition, used by the store's atomic insert too."""
    if sandbox.status.final or sandbox.hot:
        return False
    if sandbox.status == Status.FAILED:
        return sandbox.container_id is not None
    return True


class Transitions:
    """Read-modify-write of sandbox records under one lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(before, after)`` after every status change. Listeners must
        return at once (count, queue); one that raises is logged and ignored."""
        self._listeners.append(listener)

    def get(self, sandbox_id: str) -> Sandbox:
        return self.store.get(sandbox_id)

    def move(
        self,
        sandbox_id: str,
        target: Status,
        when: Callable[[Sandbox], bool] | None = None,
        **fields: Any,
    ) -> Sandbox:
        """Change status (with ``fields``) if the table allows it and ``when`` (read under
        the lock) holds; otherwise leave the record as it is and return it (a delete won
        the race, say, or an extend came before an expiry). Listeners are told under the
        lock too, so they see each sandbox's changes in the order they were made."""
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            if when is not None and not when(sandbox):
                return sandbox
            if sandbox.status == target:
                return self._write(sandbox, fields) if not target.final else sandbox
            if not allowed(sandbox.status, target):
                log.debug(
                    "transition refused",
                    extra={
                        "sandbox": sandbox_id,
                        "from": sandbox.status.value,
                        "to": target.value,
                    },
                )
                return sandbox
            if target.final:
                # Nothing secret outlives a sandbox.
                fields = {**fields, "password": "", "progress": None}
            updated = self._write(sandbox, {**fields, "status": target, "seq": sandbox.seq + 1})
            if not updated.hot:  # a hot copy is nobody's yet: no event, no count
                self._notify(sandbox, updated)
        return updated

    def claim(self, sandbox_id: str, limit: int, **fields: Any) -> Sandbox | None:
        """A ready hot copy becomes an ordinary sandbox with ``fields`` (see
        ``Store.claim_hot``). Listeners see it made at once: creating, then ready."""
        with self._lock:
            claimed = self.store.claim_hot(sandbox_id, {**fields, "updated_at": utcnow()}, limit)
            if claimed is not None:
                before = claimed.model_copy(update={"status": Status.CREATING})
                self._notify(before, claimed)
        return claimed

    def _notify(self, before: Sandbox, after: Sandbox) -> None:
        for listener in self._listeners:
            try:
                listener(before, after)
            except Exception:
                log.exception("status listener failed", extra={"sandbox": after.id})

    def update(self, sandbox_id: str, **fields: Any) -> Sandbox:
        """Change fields, never status; refused once the sandbox is final."""
        assert "status" not in fields, "status changes go through move()"
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            if sandbox.status.final:
                return sandbox
            return self._write(sandbox, fields)

    @contextlib.contextmanager
    def held(self, sandbox_id: str, hold: str) -> Iterator[Sandbox]:
        """Mark a ready sandbox as held by ``hold`` for the block (the reconciler leaves
        it alone); raises SandboxConflict when it is not ready or already held."""
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            if sandbox.status != Status.READY or sandbox.hold is not None:
                doing = f"held ({sandbox.hold})" if sandbox.hold else sandbox.status.value
                raise SandboxConflict(f"sandbox {sandbox_id} is {doing}; try again when ready")
            sandbox = self._write(sandbox, {"hold": hold})
        try:
            yield sandbox
        finally:
            self.update(sandbox_id, hold=None)

    def release_all_holds(self) -> list[str]:
        """At start nothing holds anything: holds left by a stopped service are cleared."""
        released = []
        with self._lock:
            for sandbox in self.store.list(set(LIVE)):
                if sandbox.hold is not None:
                    self._write(sandbox, {"hold": None})
                    released.append(sandbox.id)
        return released

    def _write(self, sandbox: Sandbox, fields: dict[str, Any]) -> Sandbox:
        updated = sandbox.model_copy(update={**fields, "updated_at": utcnow()})
        self.store.put(updated)
        return updated
