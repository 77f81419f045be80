"""The disk bound on ready sandboxes: one that wrote more than ``sandbox_disk_bytes`` to the
engine's disk is failed as ``disk_limit`` (counted in
``restorebox_sandbox_failures_total{reason="disk_limit"}``, sent as ``sandbox.failed``) and
its container removed, before it fills the data root for everyone. (During a restore the
runner enforces the same bound.)"""

from __future__ import annotations

import logging

from restorebox.errors import DiskLimitExceeded
from restorebox.lifecycle.provisioning import remove_containers
from restorebox.lifecycle.transitions import Transitions
from restorebox.models import ErrorInfo, Sandbox, Status
from restorebox.runtime import Runtime
from restorebox.runtime import labels as L

log = logging.getLogger("restorebox.lifecycle.disk_guard")


class DiskGuard:
    def __init__(
        self, limit: int, transitions: Transitions, runtime: Runtime, instance: str
    ) -> None:
        self.limit = limit  # 0: no bound
        self.transitions = transitions
        self.runtime = runtime
        self.instance = instance

    def check(self) -> list[str]:
        """Fail the ready sandboxes past the bound; returns their ids."""
        if not self.limit:
            return []
        ready = self.transitions.store.list({Status.READY})
        if not ready:
            return []
        usage = self.runtime.disk_usage({L.MANAGED: "true", L.INSTANCE: self.instance})
        stopped = []
        for sandbox in ready:
            used = usage.get(sandbox.container_id or "", 0)
            if used > self.limit and self._stop(sandbox, used):
                stopped.append(sandbox.id)
        return stopped

    def _stop(self, sandbox: Sandbox, used: int) -> bool:
        exc = DiskLimitExceeded.at(used, self.limit, "while it was in use")
        failed = self.transitions.move(
            sandbox.id,
            Status.FAILED,
            # Only the container measured, and nothing under way on it (a snapshot).
            when=lambda now: now.container_id == sandbox.container_id and now.hold is None,
            error=ErrorInfo(code=exc.code, message=exc.message),
        )
        if failed.status != Status.FAILED:
            return False
        log.warning(
            "sandbox over its disk bound: stopped",
            extra={"sandbox": sandbox.id, "bytes": used, "limit": self.limit},
        )
        remove_containers(self.runtime, self.instance, sandbox)
        self.transitions.update(sandbox.id, container_id=None)
        return True
