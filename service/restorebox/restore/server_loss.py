"""When a restore's server goes away under it: the container stopped (an engine restart,
someone's `docker stop`), or the server died inside it. Never the dump's own error."""

from __future__ import annotations

import re
import time

import psycopg

from restorebox.errors import ContainerVanished, RestoreFailed, SandboxFailed
from restorebox.models import RestoreError
from restorebox.restore.session import Session

# What a server says when it is stopped under a session: SQLSTATE 57P01 / 57P03, or the
# connection cut. Never a dump's own error.
SHUTDOWN = re.compile(
    r"terminating connection due to administrator command|the database system is shutting "
    r"down|server closed the connection unexpectedly"
)
STOP_GRACE_SECONDS = 10.0


def fail_if_container_gone(session: Session, errors: list[RestoreError]) -> None:
    """A step that failed because its container stopped (an engine restart, someone's
    `docker stop`) fails as that, not as the dump's error. Raises EngineUnavailable
    when the engine does not answer. When the server said it was being shut down, the
    container is given a few seconds to be seen stopped: a stopping engine signals the
    server before it marks the container stopped."""
    shut_down = any(SHUTDOWN.search(e.message) for e in errors)
    deadline = time.monotonic() + (STOP_GRACE_SECONDS if shut_down else 0)
    while True:
        container = session.runtime.inspect(session.container_id)
        if container is None or not container.running:
            raise ContainerVanished("the sandbox's container stopped during the restore")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if shut_down:
        raise RestoreFailed(
            "the sandbox's server was shut down during the restore (by the engine or "
            "an administrator), not by the dump"
        )


def server_lost(session: Session, exc: psycopg.OperationalError) -> SandboxFailed:
    """What a connection that broke mid-restore means: the container stopped (an
    engine restart, someone's `docker stop`), or the server died inside it."""
    reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    # A stopping engine closes the connection before it marks the container stopped.
    deadline = time.monotonic() + (STOP_GRACE_SECONDS if SHUTDOWN.search(str(exc)) else 0)
    while True:
        container = session.runtime.inspect(session.container_id)  # EngineUnavailable: down
        if container is None or not container.running:
            return ContainerVanished(
                f"the sandbox's container stopped during the restore ({reason})"
            )
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return RestoreFailed(
        f"the sandbox's server closed the connection during the restore ({reason}); "
        "it may have run out of memory (RESTOREBOX_SANDBOX_MEMORY_BYTES)"
    )
