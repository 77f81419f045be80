"""Drill history, kept in the state directory (SQLite) across restarts, bounded by a
retention in drills per series. The baseline of a series is its newest drill that
passed with nothing at warn or above, or its newest drill a person accepted, whichever
is newer; a failed drill never becomes one."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from restorebox.drills.model import Drill
from restorebox.errors import DrillNotFound, StateUnavailable
from restorebox.sqlite import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drills (
    id TEXT PRIMARY KEY,
    series TEXT NOT NULL,
    started_at TEXT NOT NULL,
    verdict TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drills_by_series ON drills (series, started_at);
CREATE TABLE IF NOT EXISTS stale (
    series TEXT PRIMARY KEY,
    newest TEXT NOT NULL  -- the newest backup when BACKUP_STALE was reported
);
"""


class DrillStore:
    def __init__(self, path: Path | None, retention: int = 200) -> None:
        """``path=None`` keeps drills in memory (the one-shot ``verify`` without state)."""
        self.retention = retention
        self._lock = threading.Lock()
        self._db = (
            open_database(path, _SCHEMA, "the drill history")
            if path is not None
            else sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        )
        if path is None:
            self._db.executescript(_SCHEMA)

    def save(self, drill: Drill) -> None:
        doc = drill.model_dump_json()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO drills (id, series, started_at, verdict, accepted, doc)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " verdict = excluded.verdict, accepted = excluded.accepted,"
                    " doc = excluded.doc",
                    (
                        drill.id,
                        drill.series,
                        drill.started_at.isoformat(),
                        drill.verdict,
                        int(drill.accepted),
                        doc,
                    ),
                )
                self._db.execute(
                    "DELETE FROM drills WHERE series = ? AND id NOT IN (SELECT id FROM drills"
                    " WHERE series = ? ORDER BY started_at DESC LIMIT ?)",
                    (drill.series, drill.series, self.retention),
                )
            except sqlite3.Error as exc:
                raise StateUnavailable(f"cannot record drill {drill.id}: {exc}") from exc

    def get(self, drill_id: str) -> Drill:
        row = self._one("SELECT doc FROM drills WHERE id = ?", (drill_id,))
        if row is None:
            raise DrillNotFound(f"no drill with id {drill_id!r}", id=drill_id)
        return Drill.model_validate(json.loads(row[0]))

    def of_series(self, series: str, limit: int = 100) -> list[Drill]:
        """Newest first."""
        return self._many(
            "SELECT doc FROM drills WHERE series = ? ORDER BY started_at DESC LIMIT ?",
            (series, limit),
        )

    def latest(self, series: str) -> Drill | None:
        drills = self.of_series(series, 1)
        return drills[0] if drills else None

    def baseline(self, series: str, before: str | None = None) -> Drill | None:
        """The newest drill that passed, or that a person accepted, other than
        ``before`` (the drill being compared)."""
        drills = self._many(
            "SELECT doc FROM drills WHERE series = ? AND id IS NOT ?"
            " AND (verdict = 'pass' OR accepted = 1) ORDER BY started_at DESC LIMIT 1",
            (series, before),
        )
        return drills[0] if drills else None

    def forget_unfinished(self) -> list[str]:
        """Drills left running by a service that stopped: forgotten, so the watcher drills
        their backups again (their sandboxes are reconciled away like any other)."""
        with self._lock:
            ids = [
                row[0] for row in self._db.execute("SELECT id FROM drills WHERE verdict IS NULL")
            ]
            self._db.execute("DELETE FROM drills WHERE verdict IS NULL")
        return ids

    def stale_reported(self, series: str) -> str | None:
        """The newest backup a stale alarm was raised for, while the series stays stale."""
        row = self._one("SELECT newest FROM stale WHERE series = ?", (series,))
        return row[0] if row else None

    def mark_stale(self, series: str, newest: str | None) -> None:
        with self._lock:
            if newest is None:
                self._db.execute("DELETE FROM stale WHERE series = ?", (series,))
            else:
                self._db.execute(
                    "INSERT INTO stale (series, newest) VALUES (?, ?)"
                    " ON CONFLICT (series) DO UPDATE SET newest = excluded.newest",
                    (series, newest),
                )

    def series_names(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT series FROM drills")]

    def _one(self, query: str, args: tuple[object, ...]) -> tuple[str] | None:
        with self._lock:
            row = self._db.execute(query, args).fetchone()
        return row if row is None else (str(row[0]),)

    def _many(self, query: str, args: tuple[object, ...]) -> list[Drill]:
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [Drill.model_validate(json.loads(row[0])) for row in rows]
