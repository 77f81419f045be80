"""Mask a restored sandbox in place, before anyone sees it.

In order, on the sandbox's main database:

1. **Resolve** the policy against the catalog: every column exists and takes its
   strategy; a masked column joined by a foreign key to another gets the same strategy
   on the other side (so the key still joins); unique columns are noted.
2. **Scan** every text-like column the policy does not cover (its name, a sample of its
   values); under ``strict`` a suspicious one fails the sandbox here.
3. **Sample** the original values of the masked columns, for the ``masking_leaks`` probe
   (kept in memory only, never written anywhere).
4. **Mask**, set-based, triggers off (replica mode), a large table in block ranges on
   several connections at once: a table is reloaded (``reload``: masked rows written
   aside, the table emptied into new files and refilled, its indexes and keys built
   anew), or where it cannot be, updated in place.
5. **Leave nothing behind**: an updated table is rewritten (VACUUM FULL: no old row
   version stays in a page, an index or TOAST); every masked table is analyzed anew
   (and ``pg_statistic`` rewritten: it held sampled values), materialized views
   refreshed, and the WAL that held the originals removed (``wal_recycle`` off, a
   switch and two checkpoints).

Any failure raises MaskingFailed: the caller fails the sandbox and removes its container."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from restorebox.errors import MaskingFailed, MaskingIncomplete
from restorebox.masking.evidence import Samples, sample_originals, scan_uncovered
from restorebox.masking.functions import HELPERS, expression, helper_functions
from restorebox.masking.key import MaskingKey
from restorebox.masking.model import MaskedColumn, MaskingReport
from restorebox.masking.policy import MaskingPolicy
from restorebox.masking.reload import (
    Table,
    block_ranges,
    drop_stashes,
    reloadable,
    stash_jobs,
    swap,
)
from restorebox.masking.targets import Planned, resolve_columns
from restorebox.models import Progress, Sandbox
from restorebox.pg import connect

log = logging.getLogger("restorebox.masking")

# Settings while masking: no full-page images (which would copy unmasked pages into
# the WAL), no recycled WAL segments (renamed, not emptied: they would keep it), and the
# restore's own speed settings (the sandbox is thrown away if the masking fails).
MASKING_SETTINGS = {
    "full_page_writes": "off",
    "wal_recycle": "off",
    "fsync": "off",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",
}


@dataclass
class Masker:
    sandbox: Sandbox
    policy: MaskingPolicy
    key: MaskingKey
    workers: int = 2
    on_progress: Callable[[Progress], None] = lambda progress: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    warnings: list[str] = field(default_factory=list)
    _clock: _Clock = field(init=False)

    def run(self) -> tuple[MaskingReport, Samples]:
        started = time.monotonic()
        report = MaskingReport(
            source=self.policy.source,
            strict=self.policy.strict,
            labels_not_understood=self.policy.labels_not_understood,
        )
        try:
            return self._run(report, started)
        except (MaskingFailed, MaskingIncomplete):
            raise
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MaskingFailed(f"masking failed: {message}") from exc

    def _run(self, report: MaskingReport, started: float) -> tuple[MaskingReport, Samples]:
        self._phase("masking: reading the policy against the database")
        with self._connect() as conn:
            planned, covered = resolve_columns(conn, self.policy)
            self._phase("masking: looking for personal data the policy does not cover")
            report.suspicious = scan_uncovered(conn, covered)
            if self.policy.strict and report.suspicious:
                names = ", ".join(f"{s.table}.{s.column}" for s in report.suspicious)
                raise MaskingIncomplete(
                    f"strict masking: columns that look personal are not in the policy: {names}"
                    '; give each a strategy (or "keep" when it is not personal)',
                    masking=report,
                )
            samples, counts = sample_originals(conn, planned)
            conn.execute(sql.SQL(helper_functions()))
        clock = self._clock = _Clock(report.phases, started)
        clock.lap("resolve")
        try:
            with self._masking_settings():
                rows, updated = self._mask(planned)
                clock.lap("update")
                masked = sorted({p.table for p in planned if p.strategy.kind != "keep"})
                self._rewrite(masked, updated)
                report.warnings += self.warnings + self._refresh_matviews()
                self._rewrite_statistics()
                clock.lap("rewrite")
                self._scrub_wal()
                clock.lap("scrub")
        finally:
            self._drop_helpers()
        report.columns = [
            MaskedColumn(
                table=p.table,
                column=p.column.name,
                strategy=str(p.strategy),
                rows=counts.get((p.table, p.column.name), 0) if p.strategy.kind != "keep" else 0,
                via=p.via,
            )
            for p in planned
        ]
        report.seconds = round(time.monotonic() - started, 3)
        report.rows_per_second = round(rows / report.seconds, 1) if report.seconds else 0.0
        log.info(
            "sandbox masked",
            extra={"sandbox": self.sandbox.id, "columns": len(planned), "seconds": report.seconds},
        )
        return report, samples

    # -- mask ------------------------------------------------------------------------
    def _mask(self, planned: list[Planned]) -> tuple[int, list[str]]:
        """Mask every table: reloaded where it allows (``reload``), updated otherwise.
        Returns the rows masked and the tables updated (whose old row versions still
        have to go: ``_rewrite``)."""
        tables: dict[str, list[Planned]] = {}
        for p in planned:
            if p.strategy.kind != "keep":
                tables.setdefault(p.table, []).append(p)
        with self._connect() as conn:
            oids = {name: columns[0].oid for name, columns in tables.items()}
            reload_oids = reloadable(conn, list(oids.values()))
            by_reload = {
                name: Table(
                    oid=columns[0].oid,
                    name=columns[0].column.table,
                    values={p.column.name: expression(p.column, p.strategy) for p in columns},
                    pages=self._pages(conn, columns[0].oid),
                )
                for name, columns in tables.items()
                if columns[0].oid in reload_oids
            }
        updated = [name for name in tables if name not in by_reload]
        # Updated tables first: the reload's foreign keys are validated against them.
        rows = self._update({name: tables[name] for name in updated})
        if by_reload:
            try:
                rows += self._reload(list(by_reload.values()))
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
                log.warning("reload failed, updating instead", extra={"error": message})
                self.warnings.append(
                    f"masking by reload failed ({message}); those tables were updated instead"
                )
                rows += self._update({name: tables[name] for name in by_reload})
                updated += list(by_reload)
        return rows, updated

    def _update(self, tables: dict[str, list[Planned]]) -> int:
        """One UPDATE per table (per block range of a large one), triggers off."""
        jobs: list[sql.Composed] = []
        with self._connect() as conn:
            for columns in tables.values():
                first = columns[0]
                update = sql.SQL("UPDATE {} SET {}").format(
                    first.column.table,
                    sql.SQL(", ").join(
                        sql.SQL("{} = {}").format(
                            sql.Identifier(p.column.name), expression(p.column, p.strategy)
                        )
                        for p in columns
                    ),
                )
                pages = self._pages(conn, first.oid) if first.relkind == "r" else 0
                jobs += [
                    sql.Composed([update, where]) for where in block_ranges(pages, self.workers)
                ]
        if jobs:
            self._phase(f"masking {len(tables)} tables by update", 0, len(jobs))
        return self._run_masking(jobs, "updates")

    def _reload(self, tables: list[Table]) -> int:
        """Masked rows written aside in parallel, then swapped in (``reload``)."""
        with self._connect() as conn:
            jobs = [job for table in tables for job in stash_jobs(conn, table, self.workers)]
        try:
            self._phase(f"masking {len(tables)} tables", 0, len(jobs))
            rows = self._run_masking(jobs, "tables' parts")
            self._clock.lap("aside")
            self._check()
            with self._connect() as conn:
                swap(conn, tables, lambda step: self._phase(f"masking: {step}"))
        finally:
            with self._connect() as conn:
                drop_stashes(conn, tables)
        return rows

    def _run_masking(self, jobs: list[sql.Composed], what: str) -> int:
        """Run masking statements (they take the key) on ``workers`` connections at
        once, triggers off; the rows they wrote."""
        done = 0

        def run(job: sql.Composed) -> int:
            nonlocal done
            self._check()
            with self._connect() as conn:
                conn.execute("SET session_replication_role = replica")
                conn.execute("SET synchronous_commit = off")
                params = {"ik": self.key.inner, "ok": self.key.outer}
                rows = max(conn.execute(job, params).rowcount, 0)
            done += 1
            self._phase(f"masking: {done} of {len(jobs)} {what}", done, len(jobs))
            return rows

        return self._parallel(run, jobs)

    @staticmethod
    def _pages(conn: psycopg.Connection[Any], oid: int) -> int:
        row = conn.execute(
            "SELECT pg_relation_size(%s) / current_setting('block_size')::int", (oid,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _parallel(self, run: Callable[[Any], int | None], jobs: list[Any]) -> int:
        """Run the jobs on ``workers`` connections at once; the sum of what they return."""
        if not jobs:
            return 0
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            return sum(future.result() or 0 for future in [pool.submit(run, j) for j in jobs])

    # -- leave nothing behind --------------------------------------------------------
    def _rewrite(self, tables: list[str], updated: list[str]) -> None:
        """Each updated table rewritten (its old row versions, index entries and TOAST
        gone: a reloaded one has new files already); every masked table vacuumed and
        analyzed anew."""
        self._phase(f"masking: vacuuming {len(tables)} tables")

        def rewrite(table: str) -> None:
            self._check()
            schema, _, name = table.partition(".")
            ident = sql.Identifier(schema, name)
            with self._connect() as conn:
                if table in updated:
                    conn.execute(sql.SQL("VACUUM (FULL) {}").format(ident))
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(ident))

        self._parallel(rewrite, tables)

    def _rewrite_statistics(self) -> None:
        """pg_statistic holds sampled values (most common ones, histograms): once every
        masked table and view is analyzed anew, rewritten without the old rows."""
        with self._connect() as conn:
            conn.execute("VACUUM FULL pg_catalog.pg_statistic")
            conn.execute("VACUUM FULL pg_catalog.pg_statistic_ext_data")

    def _refresh_matviews(self) -> list[str]:
        """Populated materialized views refreshed from the masked tables (in passes: one
        may read another); one that cannot be is emptied, never left holding originals."""
        warnings: list[str] = []
        with self._connect() as conn:
            pending = [
                r[0]
                for r in conn.execute(
                    "SELECT oid::regclass::text FROM pg_class"
                    " WHERE relkind = 'm' AND relispopulated ORDER BY oid"
                ).fetchall()
            ]
            if pending:
                self._phase(f"masking: refreshing {len(pending)} materialized views")
            errors: dict[str, str] = {}
            for _ in range(len(pending)):
                failed = []
                for name in pending:
                    try:
                        conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(name)))
                        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(name)))
                    except psycopg.Error as exc:
                        failed.append(name)
                        errors[name] = str(exc).strip().splitlines()[0]
                if len(failed) in (0, len(pending)):
                    pending = failed
                    break
                pending = failed
            for name in pending:
                conn.execute(
                    sql.SQL("REFRESH MATERIALIZED VIEW {} WITH NO DATA").format(sql.SQL(name))
                )
                conn.execute(
                    "DELETE FROM pg_catalog.pg_statistic WHERE starelid = %s::regclass", (name,)
                )
                warnings.append(
                    f"materialized view {name} could not be refreshed after masking "
                    f"({errors[name]}): left unpopulated, so it holds no original value"
                )
        return warnings

    def _scrub_wal(self) -> None:
        """The WAL written before masking held the originals: switch to a new segment and
        checkpoint twice, so every older segment is removed (not recycled)."""
        with self._connect() as conn:
            conn.execute("CHECKPOINT")
            conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")

    def _drop_helpers(self) -> None:
        try:
            with self._connect() as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(HELPERS))
                )
        except psycopg.Error:
            log.debug("helpers not dropped", exc_info=True)

    @contextmanager
    def _masking_settings(self) -> Iterator[None]:
        with self._connect() as conn:
            for name, value in MASKING_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
        self._wait_for_setting("wal_recycle", "off")
        try:
            yield
        finally:
            with self._connect() as conn:
                for name in MASKING_SETTINGS:
                    conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
                conn.execute("SELECT pg_reload_conf()")

    def _wait_for_setting(self, name: str, value: str) -> None:
        """A reload reaches the server's processes a moment later: wait until a new
        session sees it (the checkpointer has it by then as well)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._connect() as conn:
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            if row is not None and row[0] == value:
                return
            time.sleep(0.05)
        raise MaskingFailed(f"the sandbox's server did not take {name} = {value} in time")

    # -- helpers ------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        return connect(self.sandbox)

    def _phase(self, phase: str, step: int = 0, steps: int = 0) -> None:
        self.on_progress(Progress(phase=phase, step=step, steps=steps))

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise MaskingFailed("the sandbox was cancelled while it was being masked")


@dataclass
class _Clock:
    phases: dict[str, float]
    last: float

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self.last, 3)
        self.last = now
