"""SQLite state: the sandboxes restorebox made, so a restarted service knows them.

One row per sandbox; the record is stored as JSON beside the columns we query by.
The file holds connection passwords, so it is created with mode 0600."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from restorebox.errors import SandboxNotFound, StateUnavailable, TooManySandboxes
from restorebox.models import Sandbox, Status
from restorebox.sqlite import open_database

LIVE = frozenset(s for s in Status if not s.final)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    container_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sandboxes_status ON sandboxes (status);
"""


class Store:
    """Thread-safe access to the state database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # secure_delete: overwritten and deleted content (passwords of deleted sandboxes)
        # is zeroed.
        self._db = open_database(
            path, _SCHEMA, "state database", "synchronous=NORMAL", "secure_delete=ON"
        )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateUnavailable(f"state database {self.path}: {exc}") from exc

    def put(self, sandbox: Sandbox) -> None:
        doc = sandbox.model_dump_json()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sandboxes (id, status, expires_at, container_id, doc)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " status = excluded.status, expires_at = excluded.expires_at,"
                " container_id = excluded.container_id, doc = excluded.doc",
                (
                    sandbox.id,
                    sandbox.status.value,
                    sandbox.expires_at.isoformat(),
                    sandbox.container_id,
                    doc,
                ),
            )

    def insert_if_below(self, sandbox: Sandbox, limit: int) -> bool:
        """Insert a new sandbox unless ``limit`` sandboxes occupy a slot already
        (atomically)."""
        with self._tx() as db:
            if _occupied(db) >= limit:
                return False
            db.execute(
                "INSERT INTO sandboxes (id, status, expires_at, container_id, doc)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    sandbox.id,
                    sandbox.status.value,
                    sandbox.expires_at.isoformat(),
                    sandbox.container_id,
                    sandbox.model_dump_json(),
                ),
            )
            return True

    def claim_hot(self, sandbox_id: str, fields: dict[str, Any], limit: int) -> Sandbox | None:
        """Make a ready hot copy an ordinary sandbox with ``fields`` (atomically, so two
        creates never claim one copy, and within ``limit`` like an insert). None when it
        is no longer a ready hot copy."""
        with self._tx() as db:
            row = db.execute(
                "SELECT doc FROM sandboxes WHERE id = ? AND status = ?",
                (sandbox_id, Status.READY.value),
            ).fetchone()
            hot = Sandbox.model_validate_json(row[0]) if row is not None else None
            if hot is None or not hot.hot:
                return None
            if _occupied(db) >= limit:
                raise TooManySandboxes.at(limit)
            claimed = hot.model_copy(update={**fields, "hot": False})
            db.execute(
                "UPDATE sandboxes SET expires_at = ?, doc = ? WHERE id = ?",
                (claimed.expires_at.isoformat(), claimed.model_dump_json(), sandbox_id),
            )
            return claimed

    def get(self, sandbox_id: str) -> Sandbox:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT doc FROM sandboxes WHERE id = ?", (sandbox_id,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"state database {self.path}: {exc}") from exc
        if row is None:
            raise SandboxNotFound(f"no sandbox with id {sandbox_id!r}", id=sandbox_id)
        return Sandbox.model_validate_json(row[0])

    def list(self, statuses: set[Status] | None = None) -> list[Sandbox]:
        """Sandboxes in creation order; with ``statuses``, only those (filtered in SQL, so
        the reaper's frequent look at live sandboxes does not grow with history)."""
        query = "SELECT doc FROM sandboxes ORDER BY rowid"
        params: tuple[str, ...] = ()
        if statuses is not None:
            wanted = tuple(sorted(s.value for s in statuses))
            marks = ",".join("?" * len(wanted))
            query = f"SELECT doc FROM sandboxes WHERE status IN ({marks}) ORDER BY rowid"
            params = wanted
        with self._lock:
            try:
                rows = self._db.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"state database {self.path}: {exc}") from exc
        return [Sandbox.model_validate_json(doc) for (doc,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _occupied(db: sqlite3.Connection) -> int:
    """Sandboxes that count toward ``max_sandboxes`` (mirrors ``transitions.occupies_slot``):
    live ones, failed ones only while they hold a container, hot copies never."""
    busy = [s.value for s in LIVE if s != Status.FAILED]
    (count,) = db.execute(
        f"SELECT count(*) FROM sandboxes WHERE (status IN ({','.join('?' * len(busy))})"
        " OR (status = ? AND container_id IS NOT NULL))"
        " AND coalesce(json_extract(doc, '$.hot'), 0) = 0",
        [*busy, Status.FAILED.value],
    ).fetchone()
    return int(count)
