"""Wait until PostgreSQL in a new sandbox accepts a real login over its published port.

A log line can lie (the entrypoint may still be initialising), a login cannot."""

from __future__ import annotations

import psycopg

from restorebox.errors import ContainerVanished, SandboxStartTimeout
from restorebox.models import Sandbox
from restorebox.pg import connect
from restorebox.retry import readiness
from restorebox.runtime import Runtime

INSPECT_EVERY = 5  # failed login attempts between checks that the container still runs


class _NotYet(Exception):
    pass


def wait_until_ready(runtime: Runtime, sandbox: Sandbox, timeout_seconds: float) -> None:
    """Raises SandboxStartTimeout (with the container's log) or ContainerVanished."""
    assert sandbox.container_id is not None
    container_id = sandbox.container_id
    last_error: list[str] = [""]
    failures = [0]

    def attempt() -> None:
        try:
            with connect(sandbox, dbname=sandbox.initial_database, timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            last_error[0] = str(exc).strip()
            failures[0] += 1
            # Ask the engine whether the container died only now and then, not on every
            # 50 ms poll: a login attempt is cheap, an engine round trip less so.
            if failures[0] % INSPECT_EVERY:
                raise _NotYet() from exc
            container = runtime.inspect(container_id)
            if container is None or not container.running:
                logs = runtime.logs(container_id, tail=30)
                raise ContainerVanished(
                    f"the sandbox container exited while starting; its log ends with:\n{logs}"
                ) from exc
            raise _NotYet() from exc

    try:
        for try_ in readiness(timeout_seconds, (_NotYet,)):
            with try_:
                attempt()
    except _NotYet:
        logs = runtime.logs(container_id, tail=30)
        raise SandboxStartTimeout(
            f"PostgreSQL did not accept a login within {timeout_seconds:g} s "
            f"(last error: {last_error[0]}); container log:\n{logs}"
        ) from None
