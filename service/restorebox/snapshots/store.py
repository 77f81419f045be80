"""Snapshot records in SQLite: one row per snapshot, found by id, name or cache key (the
images themselves live in the engine)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from restorebox.errors import SnapshotNotFound, StateUnavailable
from restorebox.models import Snapshot, utcnow
from restorebox.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    key TEXT UNIQUE,
    name TEXT UNIQUE,
    doc TEXT NOT NULL
);
"""


class SnapshotStore:
    """Snapshot records in SQLite (the images themselves live in the engine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_database(path, _SCHEMA, "snapshot state")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[Snapshot]:
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"snapshot state {self.path}: {exc}") from exc
        return [Snapshot.model_validate_json(doc) for (doc,) in rows]

    def put(self, snapshot: Snapshot) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO snapshots (id, key, name, doc) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET key = excluded.key, name = excluded.name,"
                    " doc = excluded.doc",
                    (snapshot.id, snapshot.key, snapshot.name, snapshot.model_dump_json()),
                )
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise StateUnavailable(f"snapshot state {self.path}: {exc}") from exc

    def by_key(self, key: str) -> Snapshot | None:
        found = self._query("SELECT doc FROM snapshots WHERE key = ?", (key,))
        return found[0] if found else None

    def get(self, ref: str) -> Snapshot:
        """By id or by name."""
        found = self._query("SELECT doc FROM snapshots WHERE id = ? OR name = ?", (ref, ref))
        if not found:
            raise SnapshotNotFound(f"no snapshot {ref!r}", snapshot=ref)
        return found[0]

    def list(self) -> list[Snapshot]:
        return self._query("SELECT doc FROM snapshots ORDER BY rowid")

    def touch(self, snapshot: Snapshot) -> None:
        self.put(snapshot.model_copy(update={"last_used_at": utcnow()}))

    def delete(self, snapshot_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
