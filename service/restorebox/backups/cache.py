"""Descriptions of backups, remembered across restarts (SQLite in the state directory).

Keyed by name and a stamp of every member's size, mtime and inode: a changed file is
described again. A description that failed is remembered too, as its error."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

from restorebox.backups.model import Backup
from restorebox.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS descriptions (
    name TEXT PRIMARY KEY,
    stamp TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""

Described = Backup | tuple[str, str]  # a description, or (error code, message)


class DescriptionCache:
    def __init__(self, path: Path | None) -> None:
        """``path=None`` keeps descriptions in memory only (tests, tools)."""
        self._lock = threading.Lock()
        self._memory: dict[str, tuple[str, Described]] = {}
        self._db: sqlite3.Connection | None = None
        if path is None:
            return
        self._db = open_database(path, _SCHEMA, "the backup cache")

    def get(self, name: str, stamp: str) -> Described | None:
        with self._lock:
            hit = self._memory.get(name)
            if hit and hit[0] == stamp:
                return hit[1]
            if self._db is None:
                return None
            try:
                row = self._db.execute(
                    "SELECT doc FROM descriptions WHERE name = ? AND stamp = ?", (name, stamp)
                ).fetchone()
            except sqlite3.Error:
                return None  # a cache: losing it costs a re-read, never an answer
        if row is None:
            return None
        doc = json.loads(row[0])
        described: Described = (
            (doc["error"]["code"], doc["error"]["message"])
            if "error" in doc
            else Backup.model_validate(doc)
        )
        with self._lock:
            self._memory[name] = (stamp, described)
        return described

    def put(self, name: str, stamp: str, described: Described) -> None:
        if isinstance(described, Backup):
            doc = described.model_dump_json()
        else:
            doc = json.dumps({"error": {"code": described[0], "message": described[1]}})
        with self._lock:
            self._memory[name] = (stamp, described)
            if self._db is None:
                return
            with contextlib.suppress(sqlite3.Error):  # a cache: a lost write costs a re-read
                self._db.execute(
                    "INSERT INTO descriptions (name, stamp, doc) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET stamp = excluded.stamp, doc = excluded.doc",
                    (name, stamp, doc),
                )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
