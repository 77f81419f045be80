"""The checkpoint before a snapshot: everything on disk, and little WAL to carry."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql


def checkpoint_with_little_wal(conn: psycopg.Connection[Any]) -> None:
    """A checkpoint that also removes the WAL segments a big load left (they are recycled
    up to ``max_wal_size``, gigabytes a snapshot would carry): ``max_wal_size`` at its
    minimum for that one checkpoint, then back as it was."""
    row = conn.execute(
        "SELECT setting FROM pg_file_settings WHERE name = 'max_wal_size' AND applied "
        "AND sourcefile LIKE '%postgresql.auto.conf'"
    ).fetchone()
    conn.execute("ALTER SYSTEM SET max_wal_size = '32MB'")
    conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.1)  # the checkpointer reads the new value before the checkpoint asked next
    try:
        conn.execute("CHECKPOINT")
    finally:
        if row is None:
            conn.execute("ALTER SYSTEM RESET max_wal_size")
        else:
            conn.execute(sql.SQL("ALTER SYSTEM SET max_wal_size = {}").format(sql.Literal(row[0])))
        conn.execute("SELECT pg_reload_conf()")
