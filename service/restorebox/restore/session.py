"""The sandbox a restore works in, and the bounds every step of it keeps: the deadline
(every command and statement ends by it) and the disk it may write."""

from __future__ import annotations

import threading
import time

import psycopg

from restorebox.errors import DiskLimitExceeded, RestoreTimeout
from restorebox.models import Sandbox
from restorebox.pg import connect
from restorebox.runtime import Runtime
from restorebox.runtime import labels as L


class Session:
    def __init__(
        self,
        runtime: Runtime,
        sandbox: Sandbox,
        *,
        timeout_seconds: float,
        cancelled: threading.Event,
        disk_limit: int = 0,
    ) -> None:
        assert sandbox.container_id is not None
        self.runtime = runtime
        self.sandbox = sandbox
        self.container_id: str = sandbox.container_id
        self.deadline = time.monotonic() + timeout_seconds
        self.timeout_seconds = timeout_seconds
        self.cancelled = cancelled
        self.disk_limit = disk_limit  # bytes the sandbox may write; 0: no bound

    def timeout_argv(self) -> list[str]:
        """Every command in the sandbox ends by the restore's deadline."""
        self.check_time()
        return ["timeout", "-k", "5", str(max(1, int(self.deadline - time.monotonic())))]

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """A connection whose statements end by the restore's deadline (to the sandbox's
        database unless told otherwise)."""
        self.check_time()
        remaining_ms = max(1000, int((self.deadline - time.monotonic()) * 1000))
        return connect(self.sandbox, dbname=dbname, statement_timeout_ms=remaining_ms)

    def check_disk(self, doing: str) -> None:
        """Fail the restore once the sandbox wrote more than it may (the caller removes
        the container, which ends whatever still writes)."""
        if not self.disk_limit:
            return
        labels = {L.MANAGED: "true", L.SANDBOX: self.sandbox.id}
        used = self.runtime.disk_usage(labels).get(self.container_id, 0)
        if used > self.disk_limit:
            raise DiskLimitExceeded.at(used, self.disk_limit, doing)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RestoreTimeout(
                f"the restore did not finish within {self.timeout_seconds:g} seconds"
            )
