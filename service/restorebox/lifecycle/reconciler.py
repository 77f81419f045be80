"""Make state and engine agree, at any time (at start and every few reaper ticks).

* a sandbox in progress that no worker holds was interrupted: failed, container removed;
* a sandbox left ``deleting`` (the service died mid-delete, or the engine refused) is
  deleted again;
* a failed sandbox still holding a container it should not keep has it removed;
* a ready sandbox whose container vanished or stopped (seen so in two passes in a row)
  is failed; one held (a snapshot being taken: its container is paused) never is;
* containers of this instance that no live sandbox owns are removed, then whatever the
  runtime made around them (networks) is pruned.
Containers of other instances are never touched here (see ``gc``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from restorebox.errors import Interrupted, RestoreboxError
from restorebox.lifecycle.deletions import Deletions
from restorebox.lifecycle.provisioning import Provisioner, remove_containers
from restorebox.lifecycle.store import LIVE
from restorebox.lifecycle.transitions import Transitions
from restorebox.models import ErrorInfo, Sandbox, Status, utcnow
from restorebox.runtime import Container, Runtime
from restorebox.runtime import labels as L
from restorebox.snapshots.store import SnapshotStore

log = logging.getLogger("restorebox.lifecycle.reconciler")

# A sandbox must be unheld and unchanged this long before the reconciler repairs it.
QUIET = timedelta(seconds=3)


class Reconciler:
    def __init__(
        self,
        transitions: Transitions,
        runtime: Runtime,
        provisioner: Provisioner,
        instance: str,
        deletions: Deletions,
        snapshots: SnapshotStore | None = None,
        taking: Callable[[], set[str]] = set,
    ) -> None:
        self.snapshots = snapshots
        self._taking = taking  # snapshot images being taken right now
        self.transitions = transitions
        self.runtime = runtime
        self.provisioner = provisioner
        self.instance = instance
        self.deletions = deletions
        # Ready sandboxes whose container was missing last pass (id -> that container).
        self._suspects: dict[str, str] = {}

    def run(self, at_start: bool = False) -> dict[str, list[str]]:
        """At start nothing can be mid-way (no worker, no request yet): no grace period."""
        quiet = timedelta(0) if at_start else QUIET
        outcome: dict[str, list[str]] = {"removed": [], "failed": [], "repaired": []}
        # Records first, then the engine's listing, then each record again: a decision is
        # made only on a record the listing is newer than, and unchanged since (a reset or
        # a copy that finished in between is looked at next pass, not failed).
        before = self.transitions.store.list(set(LIVE))
        containers = self.runtime.list_managed({L.MANAGED: "true", L.INSTANCE: self.instance})
        suspects: dict[str, str] = {}
        for listed in before:
            # Held first, then a fresh read, then a grace period: a worker registers before
            # its sandbox is recorded and records its last status before it lets go, so a
            # sandbox seen unheld and quiet for a while is truly nobody's.
            if listed.id in self._held():
                continue
            sandbox = self.transitions.get(listed.id)
            if sandbox.updated_at != listed.updated_at or sandbox.hold is not None:
                continue
            busy_state = sandbox.status.in_progress or sandbox.status == Status.DELETING
            if sandbox.status.final or (
                (busy_state or sandbox.status == Status.READY)
                and utcnow() - sandbox.updated_at < quiet
            ):
                continue
            try:
                self._repair(sandbox, containers, outcome, suspects, at_start)
            except RestoreboxError:  # one sandbox's trouble never stops the pass
                log.exception("repair failed; retried next pass", extra={"sandbox": sandbox.id})
        self._suspects = suspects

        live = {s.id: s for s in self.transitions.store.list(set(LIVE))}
        held = self._held()
        for container in containers:
            sid = container.labels.get(L.SANDBOX, "")
            owner = live.get(sid)
            if sid in held or (owner is not None and utcnow() - owner.updated_at < quiet):
                continue
            if owner is None or owner.container_id != container.id:
                try:
                    self.runtime.remove(container.id)
                except RestoreboxError:
                    log.exception(
                        "removal failed; retried next pass", extra={"container": container.name}
                    )
                    continue
                outcome["removed"].append(container.name)
        keep = held | set(live)
        outcome["removed"] += self.runtime.prune(
            {L.MANAGED: "true", L.INSTANCE: self.instance}, keep
        )
        outcome["removed"] += self._orphan_snapshots()
        if any(outcome.values()):
            log.info("reconciled", extra=outcome)
        return outcome

    def _orphan_snapshots(self) -> list[str]:
        """Snapshot images no record names (the service died while taking them)."""
        if self.snapshots is None:
            return []
        images = self.runtime.list_snapshots({L.MANAGED: "true", L.INSTANCE: self.instance})
        # Read after the listing, in this order: an image listed was committed before it,
        # so it is either still being taken or already recorded (a take records it before
        # it stops counting as being taken).
        known = self._taking() | {s.image for s in self.snapshots.list()}
        removed = []
        for image in images:
            if image not in known and self.runtime.remove_snapshot(image):
                removed.append(image)
        return removed

    def _held(self) -> set[str]:
        return self.provisioner.active() | self.deletions.busy()

    def _repair(
        self,
        sandbox: Sandbox,
        containers: list[Container],
        outcome: dict[str, list[str]],
        suspects: dict[str, str],
        at_start: bool,
    ) -> None:
        if sandbox.status.in_progress:
            self.provisioner.fail(
                sandbox.id, Interrupted("the service stopped while this sandbox was being made")
            )
            outcome["failed"].append(sandbox.id)
        elif sandbox.status == Status.DELETING:
            self.deletions.finish(sandbox)
            outcome["repaired"].append(sandbox.id)
        elif (
            sandbox.status == Status.FAILED and sandbox.container_id and not sandbox.container_kept
        ):
            remove_containers(self.runtime, self.instance, sandbox)
            self.transitions.update(sandbox.id, container_id=None)
            outcome["repaired"].append(sandbox.id)
        elif sandbox.status == Status.READY:
            mine = next((c for c in containers if c.id == sandbox.container_id), None)
            if mine is not None and mine.running:
                return
            # Failed only when seen gone twice, a pass apart, with the same container: a
            # grace period for whatever the engine was doing when it was listed.
            seen_before = self._suspects.get(sandbox.id) == sandbox.container_id
            if not (at_start or seen_before):
                suspects[sandbox.id] = sandbox.container_id or ""
                return
            failed = self.transitions.move(
                sandbox.id,
                Status.FAILED,
                when=lambda now: now.container_id == sandbox.container_id and now.hold is None,
                error=ErrorInfo(
                    code="container_vanished",
                    message="the sandbox's container was removed or stopped outside restorebox",
                ),
            )
            if failed.status != Status.FAILED:
                return  # it changed under the lock: looked at again next pass
            if mine is not None:
                self.runtime.remove(mine.id)
            self.transitions.update(sandbox.id, container_id=None)
            outcome["failed"].append(sandbox.id)
