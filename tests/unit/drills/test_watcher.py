"""Issue 19: the watcher, on a fake runner and a real folder: the newest backup of each
series on first start, a new backup once settled, one written again under its name,
and a stale series said once per newest backup."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from restorebox.drills.model import Drill
from restorebox.drills.series import Series, group
from restorebox.drills.store import DrillStore
from restorebox.drills.watcher import Watcher


class Runner:
    """What the watcher asks of a DrillRunner: the series, the history, start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settings = SimpleNamespace(
            backups_dir=folder, drill_poll_seconds=1.0, drill_settle_seconds=5.0
        )
        self.store = DrillStore(None)
        self.started: list[tuple[str, str]] = []

    def series(self) -> dict[str, Series]:
        stamps = {
            p.name: datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in self.folder.iterdir()
        }
        return group(stamps, lambda name: ("app", 3600.0) if name.startswith("app") else None)

    def start(self, series: str, backup: str) -> Drill:
        self.started.append((series, backup))
        drill = Drill(
            id=str(len(self.started)), series=series, backups=[backup], status="done",
            verdict="pass", started_at=datetime.now(UTC),
        )  # fmt: skip
        self.store.save(drill)
        return drill


def write(path: Path, text: str, when: float) -> None:
    path.write_text(text)
    os.utime(path, (when, when))


def test_the_watcher(tmp_path: Path) -> None:
    now = [datetime(2025, 9, 3, 12, tzinfo=UTC).timestamp()]
    write(tmp_path / "app_2025-09-01.sql", "one", now[0] - 2 * 86400)
    write(tmp_path / "app_2025-09-02.sql", "two", now[0] - 86400)
    write(tmp_path / "latest.sql", "v1", now[0] - 60)
    runner = Runner(tmp_path)
    stale: list[str] = []
    watcher = Watcher(runner, lambda s: stale.append(s.name), clock=lambda: now[0])  # type: ignore[arg-type]
    watcher.poll()
    assert sorted(runner.started) == [("app", "app_2025-09-02.sql"), ("latest", "latest.sql")]
    assert stale == ["app"]  # one a hour declared; the newest is a day old
    # A restart does not drill what was drilled.
    again = Watcher(runner, lambda s: stale.append(s.name), clock=lambda: now[0])  # type: ignore[arg-type]
    again.poll()
    assert len(runner.started) == 2
    assert stale == ["app"]  # said once per newest backup
    # A new backup: drilled once unchanged for the settle time, not while it grows.
    write(tmp_path / "app_2025-09-03.sql", "thr", now[0])
    watcher.poll()
    now[0] += 3
    write(tmp_path / "app_2025-09-03.sql", "three", now[0])
    watcher.poll()
    now[0] += 3
    watcher.poll()
    assert len(runner.started) == 2  # changed 3 s ago
    now[0] += 3
    watcher.poll()
    assert runner.started[-1] == ("app", "app_2025-09-03.sql")
    # Written again under the same name: drilled again.
    write(tmp_path / "latest.sql", "version two", now[0])
    watcher.poll()
    now[0] += 6
    watcher.poll()
    assert runner.started[-1] == ("latest", "latest.sql")
    assert stale == ["app", "app"]  # the new newest is still more than an hour old


def test_a_fresh_backup_ends_the_staleness(tmp_path: Path) -> None:
    now = datetime(2025, 9, 3, 12, tzinfo=UTC).timestamp()
    write(tmp_path / "app_2025-09-01.sql", "one", now)
    runner: Any = Runner(tmp_path)
    said: list[str] = []
    Watcher(runner, lambda s: said.append(s.name), clock=lambda: now).poll()
    assert said == ["app"]
    assert runner.store.stale_reported("app") == "app_2025-09-01.sql"
    write(tmp_path / "app_2025-09-03T11-59-00.sql", "two", now)
    Watcher(runner, lambda s: said.append(s.name), clock=lambda: now).poll()
    assert runner.store.stale_reported("app") is None
