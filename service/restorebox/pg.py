"""Connections from the service to a sandbox, over its published loopback port."""

from __future__ import annotations

import psycopg

from restorebox.models import Sandbox


def connect(
    sandbox: Sandbox,
    *,
    dbname: str | None = None,
    timeout: int = 10,
    statement_timeout_ms: int | None = None,
) -> psycopg.Connection:
    """An autocommit connection as the sandbox's superuser; raises psycopg.OperationalError."""
    if sandbox.port is None:
        raise psycopg.OperationalError("the sandbox has no published port")
    options = f"-c statement_timeout={statement_timeout_ms}" if statement_timeout_ms else None
    return psycopg.connect(
        options=options,
        host=sandbox.host,
        port=sandbox.port,
        user=sandbox.user,
        password=sandbox.password,
        dbname=dbname or sandbox.database,
        connect_timeout=timeout,
        autocommit=True,
        application_name="restorebox",
    )
