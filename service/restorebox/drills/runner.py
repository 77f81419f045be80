"""Run drills: restore a series' newest backup (set) into a sandbox nobody is handed,
with every probe, gather its facts, compare them with the series' baseline, record the
drill, remove the sandbox. Drills run on their own threads (one at a time by default) and
never hold an interactive create: at the sandbox limit they wait for room."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from restorebox.backups import Catalog
from restorebox.drills.compare import Rules, compare
from restorebox.drills.config import DrillsFile
from restorebox.drills.config import load as load_config
from restorebox.drills.facts import from_backups, gather
from restorebox.drills.model import Drill, Facts, Finding, verdict_of
from restorebox.drills.series import Series, drill_set, group, ordered_set, read_name
from restorebox.drills.store import DrillStore
from restorebox.errors import RestoreboxError, SeriesNotFound, TooManySandboxes
from restorebox.lifecycle.manager import SandboxManager
from restorebox.lifecycle.records import DRILLS_OWNER, CreateRequest
from restorebox.models import Sandbox, Status
from restorebox.settings import Settings

log = logging.getLogger("restorebox.drills")
ROOM_POLL_SECONDS = 5.0


class DrillRunner:
    def __init__(
        self,
        settings: Settings,
        manager: SandboxManager,
        catalog: Catalog,
        store: DrillStore,
        on_finished: Callable[[Drill], None] = lambda drill: None,
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.catalog = catalog
        self.store = store
        self.on_finished = on_finished
        self._pool = ThreadPoolExecutor(
            max_workers=settings.drill_workers, thread_name_prefix="drill"
        )
        self._stopping = threading.Event()
        self._told: str | None = None  # the drills file's problem, logged once
        if forgotten := store.forget_unfinished():
            log.warning(
                "drills interrupted by a stop are drilled again", extra={"drills": forgotten}
            )

    # -- series -----------------------------------------------------------------------
    def config(self) -> tuple[DrillsFile, str | None]:
        """The drills file (read anew each time: it is small), and what is wrong with it."""
        drills_file, problem = load_config(Path(self.settings.backups_dir))
        if problem is not None and problem != self._told:
            log.warning("drills file not used", extra={"error": problem})
        self._told = problem
        return drills_file, problem

    def series(self) -> dict[str, Series]:
        """Every series of the backups folder, oldest backup first."""
        root = Path(self.settings.backups_dir)
        drills_file, _ = self.config()
        stamps: dict[str, datetime] = {}
        for name in self.catalog.names():
            try:
                mtime = (root / name).stat().st_mtime
            except OSError:
                continue
            stamps[name] = datetime.fromtimestamp(mtime, UTC)

        def declared(name: str) -> tuple[str, float | None] | None:
            entry = drills_file.owner_of(name)
            return (entry.name, entry.every) if entry else None

        return group(stamps, declared)

    def one_series(self, name: str) -> Series:
        found = self.series().get(name)
        if found is None or not found.backups:
            raise SeriesNotFound(f"no backup in the backups folder belongs to series {name!r}")
        return found

    def rules_for(self, series: str) -> Rules:
        entry = self.config()[0].entry(series)
        return entry.rules() if entry else Rules()

    # -- drilling ---------------------------------------------------------------------
    def start(self, series_name: str, backup: str | None = None) -> Drill:
        """Record a drill of the series' newest backup (or ``backup``) and run it in the
        background; returns it while it runs."""
        series = self.one_series(series_name)
        newest = backup or series.backups[-1][0]
        contents = self._contents_of_stamp(newest)
        entry = self.config()[0].entry(series.name)
        if entry is not None and entry.set:
            backups = ordered_set(newest, entry.set, self.catalog.names())
        else:
            backups = drill_set(newest, contents)
        drill = Drill(
            id=secrets.token_hex(6),
            series=series.name,
            backups=backups,
            started_at=datetime.now(UTC),
        )
        self.store.save(drill)
        self._pool.submit(self._run_logged, drill)
        return drill

    def shutdown(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _contents_of_stamp(self, backup: str) -> dict[str, str]:
        """What each backup of ``backup``'s timestamp holds (a data-only backup's schema
        is in another series), read now if need be; unreadable ones are left out."""
        stamp = read_name(backup).stamp
        contents: dict[str, str] = {}
        for name in self.catalog.names():
            if name != backup and (stamp is None or read_name(name).stamp != stamp):
                continue
            try:
                contents[name] = self.catalog.get(name).content
            except (RestoreboxError, OSError):
                continue
        return contents

    def _run_logged(self, drill: Drill) -> None:
        try:
            self.run(drill)
        except Exception as exc:  # a drill's thread must never die silently, nor pass
            log.exception("drill crashed", extra={"drill": drill.id, "series": drill.series})
            crashed = Finding(
                code="RESTORE_FAILED",
                severity="fail",
                object=", ".join(drill.backups),
                message=f"the drill itself could not finish ({type(exc).__name__}: {exc}); "
                "see the service's log",
            )
            with contextlib.suppress(RestoreboxError):
                self.store.save(
                    drill.model_copy(
                        update={
                            "status": "done",
                            "verdict": "fail",
                            "findings": [crashed],
                            "finished_at": datetime.now(UTC),
                        }
                    )
                )

    def run(self, drill: Drill, baseline: Drill | None = None) -> Drill:
        """Restore, gather, compare (with ``baseline``, else the series' own), record;
        the sandbox is removed whatever happens."""
        started = time.monotonic()
        rules = self.rules_for(drill.series)
        log.info("drill started", extra={"drill": drill.id, "backups": drill.backups})
        facts = self._facts(drill, rules)
        baseline = baseline or self.store.baseline(drill.series, before=drill.id)
        findings = compare(drill.series, facts, baseline.facts if baseline else None, rules)
        entry = self.config()[0].entry(drill.series)
        for finding in findings:
            for ignore in entry.ignore if entry else []:
                if ignore.code == finding.code and ignore.object in (None, finding.object):
                    finding.ignored = ignore.reason
        drill = drill.model_copy(
            update={
                "status": "done",
                "facts": facts,
                "findings": findings,
                "verdict": verdict_of(findings),
                "baseline": baseline.id if baseline else None,
                "restore_seconds": facts.restore_seconds,
                "finished_at": datetime.now(UTC),
            }
        )
        self.store.save(drill)
        log.info(
            "drill finished",
            extra={
                "drill": drill.id,
                "series": drill.series,
                "verdict": drill.verdict,
                "findings": [f.code for f in findings if f.severity != "info"],
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        self.on_finished(drill)
        return drill

    def _facts(self, drill: Drill, rules: Rules) -> Facts:
        try:
            backups = [self.catalog.get(name) for name in drill.backups]
        except RestoreboxError as exc:
            return Facts(
                backups=drill.backups, backup_bytes=0, content="unknown", rows_known=False,
                status="failed", error=exc.message,
            )  # fmt: skip
        request = CreateRequest(
            backups=drill.backups,
            owner=DRILLS_OWNER,
            fresh=True,  # a drill restores the files themselves, never a snapshot of them
            keep_snapshot=False,
            ttl_seconds=min(self.settings.drill_ttl_seconds, self.settings.max_ttl_seconds),
        )
        try:
            sandbox = self._create(request)
        except RestoreboxError as exc:  # refused before any container (422s)
            return Facts(**from_backups(backups, None), status="failed", error=exc.message)
        try:
            sandbox = self.manager.wait(sandbox.id, timeout=self.settings.drill_ttl_seconds)
            try:
                return gather(sandbox, backups, rules)
            except psycopg.Error as exc:  # the copy went away while it was read
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
                return Facts(
                    **from_backups(backups, sandbox),
                    status="failed",
                    error=f"the restored copy could not be read: {reason}",
                )
        finally:
            self._remove(sandbox.id)

    def _create(self, request: CreateRequest) -> Sandbox:
        """Create, waiting for room at the sandbox limit: interactive creates go first."""
        while True:
            try:
                return self.manager.create(request)
            except TooManySandboxes:
                if self._stopping.wait(ROOM_POLL_SECONDS):
                    raise

    def _remove(self, sandbox_id: str) -> None:
        try:
            sandbox = self.manager.get(sandbox_id)
            if not sandbox.status.final and sandbox.status != Status.DELETING:
                self.manager.delete(sandbox_id)
        except RestoreboxError as exc:
            log.warning(
                "drill sandbox not removed; the reaper will",
                extra={"sandbox": sandbox_id, "error": exc.message},
            )
