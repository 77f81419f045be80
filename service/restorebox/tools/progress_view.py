"""How the CLI shows a sandbox being made: a progress bar on a terminal (rich), plain
lines otherwise (one per phase change, and at most one every few seconds in between)."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from restorebox.tools.client import Event

PLAIN_EVERY_SECONDS = 5.0


class ProgressView:
    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = ("", 0.0)
        self._last_bytes = (0, 0.0)  # (bytes done, when): for the rate

    def __enter__(self) -> ProgressView:
        if self.tty:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: Event) -> None:
        data = event.sandbox.data
        progress: dict[str, Any] = data.get("progress") or {}
        phase = progress.get("phase") or data["status"]
        if progress.get("steps", 1) > 1:
            phase += f" ({progress['step']}/{progress['steps']})"
        done, total = progress.get("bytes_done", 0), progress.get("bytes_total", 0)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=phase, completed=done, total=total or None)
            return
        now = time.monotonic()
        last_phase, last_at = self._last_line
        said = f"{data['id']} {data['status']}: {phase}"
        if said == last_phase and (event.name == "end" or now - last_at < PLAIN_EVERY_SECONDS):
            return  # said already (the end repeats the final state)
        line = said
        if total:
            line += f" {done / 1e6:.1f}/{total / 1e6:.1f} MB"
            before, then = self._last_bytes
            if 0 < before < done and now > then:
                line += f" at {(done - before) / (now - then) / 1e6:.1f} MB/s"
            self._last_bytes = (done, now)
        print(line, file=self.stream, flush=True)
        self._last_line = (said, now)
