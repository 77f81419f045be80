"""Opening the service's SQLite files the one way: private folder and file, WAL, schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from restorebox.errors import StateUnavailable


def open_database(path: Path, schema: str, what: str, *pragmas: str) -> sqlite3.Connection:
    """A connection shared by threads (callers hold their own lock); raises
    StateUnavailable naming ``what`` when the file cannot be opened or set up."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            path.touch(mode=0o600)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")
        db.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise StateUnavailable(f"cannot open {what} {path}: {exc}") from exc
    return db
