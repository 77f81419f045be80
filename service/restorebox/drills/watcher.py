"""The drills watcher: notices new backups in the backups folder and drills them, and
notices series whose backups stopped arriving.

A backup is new (or written again under its name, like a nightly "latest.sql") once its
size and mtime have not changed for ``drill_settle_seconds``: a file still being written
is left alone. On the first pass only the newest backup of each series is drilled, and
only if no drill of it exists (a restart does not drill the history again). Polling,
every ``drill_poll_seconds``: it works on every filesystem, including bind mounts and
network shares where inotify says nothing."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from restorebox.drills.runner import DrillRunner
from restorebox.drills.series import Series
from restorebox.errors import RestoreboxError

log = logging.getLogger("restorebox.drills.watcher")
Fingerprint = tuple[int, int]  # total size, newest mtime (ns)


def fingerprint(path: Path) -> Fingerprint | None:
    """Size and mtime of a file, or of every file of a directory dump."""
    try:
        if not path.is_dir():
            st = path.stat()
            return st.st_size, st.st_mtime_ns
        size, newest = 0, path.stat().st_mtime_ns
        for folder, _, files in os.walk(path):
            for name in files:
                st = (Path(folder) / name).stat()
                size, newest = size + st.st_size, max(newest, st.st_mtime_ns)
        return size, newest
    except OSError:
        return None


class Watcher:
    def __init__(
        self,
        runner: DrillRunner,
        on_stale: Callable[[Series], None] = lambda series: None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.runner = runner
        self.on_stale = on_stale
        settings = runner.settings
        self.root = Path(settings.backups_dir)
        self.poll_seconds = settings.drill_poll_seconds
        self.settle_seconds = settings.drill_settle_seconds
        self._clock = clock or (lambda: datetime.now(UTC).timestamp())
        self._seen: dict[str, Fingerprint] = {}  # drilled, or there at the first pass
        self._changing: dict[str, tuple[Fingerprint, float]] = {}  # since when unchanged
        self._first = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drills-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # the watcher outlives any one bad pass
                log.exception("drills watcher pass failed; next pass in a while")
            self._stop.wait(self.poll_seconds)

    def poll(self) -> list[str]:
        """One pass: drill what is new and settled; report stale series. Returns the ids
        of the drills started."""
        series = self.runner.series()
        started: list[str] = []
        now = self._clock()
        if self._first:
            self._first = False
            for one in series.values():
                for name, _ in one.backups:
                    if (found := fingerprint(self.root / name)) is not None:
                        self._seen[name] = found
                newest = one.newest
                if newest is not None and not self._drilled(one.name, newest[0]):
                    started += self._start(one.name, newest[0])
        else:
            for one in series.values():
                for name, _ in one.backups:
                    # New, or written again under the same name (a nightly "latest.sql").
                    found = fingerprint(self.root / name)
                    if found is None or self._seen.get(name) == found:
                        continue
                    before = self._changing.get(name)
                    if before is None or before[0] != found:
                        self._changing[name] = (found, now)
                        continue
                    if now - before[1] < self.settle_seconds:
                        continue
                    del self._changing[name]
                    self._seen[name] = found
                    started += self._start(one.name, name)
        self._report_stale(series)
        return started

    def _drilled(self, series: str, backup: str) -> bool:
        return any(backup in d.backups for d in self.runner.store.of_series(series, 20))

    def _start(self, series: str, backup: str) -> list[str]:
        try:
            return [self.runner.start(series, backup).id]
        except RestoreboxError as exc:
            log.warning(
                "drill not started",
                extra={"series": series, "backup": backup, "error": exc.message},
            )
            return []

    def _report_stale(self, series: dict[str, Series]) -> None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        for one in series.values():
            newest = one.newest
            if newest is None:
                continue
            if one.stale(now):
                if self.runner.store.stale_reported(one.name) != newest[0]:
                    self.runner.store.mark_stale(one.name, newest[0])
                    log.warning(
                        "series stale",
                        extra={"series": one.name, "newest": newest[0]},
                    )
                    self.on_stale(one)
            elif self.runner.store.stale_reported(one.name) is not None:
                self.runner.store.mark_stale(one.name, None)
