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
from restorebox.masking.functions import HELPERS, Column, expression, helper_functions
from restorebox.masking.key import MaskingKey
from restorebox.masking.model import MaskedColumn, MaskingReport, SuspiciousColumn
from restorebox.masking.policy import MaskingPolicy
from restorebox.masking.reload import (
    Table,
    block_ranges,
    drop_stashes,
    reloadable,
    stash_jobs,
    swap,
)
from restorebox.masking.scan import reasons_for
from restorebox.masking.strategies import Strategy
from restorebox.masking.words import CITIES, FIRST_NAMES, LAST_NAMES
from restorebox.models import Progress, Sandbox
from restorebox.pg import connect

log = logging.getLogger("restorebox.masking")

SAMPLE_ROWS = 500
SAMPLES_PER_COLUMN = 50
SCAN_ROWS = 200
MIN_SAMPLE_LENGTH = 4
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
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", HELPERS)

_CATALOG = """
SELECT c.oid, c.relkind, a.attnum, a.attgenerated <> '', a.attnotnull,
       format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), NULL),
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN coalesce(nullif(t.typbasetype, 0), a.atttypid)
                 IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
            THEN a.atttypmod - 4 END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %s AND a.attnum > 0
     AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = %s AND c.relname = %s
"""
_FOREIGN_KEYS = """
SELECT cn.nspname || '.' || cr.relname, ca.attname, fn.nspname || '.' || fr.relname, fa.attname
FROM pg_constraint k
CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(child, parent)
JOIN pg_class cr ON cr.oid = k.conrelid
JOIN pg_namespace cn ON cn.oid = cr.relnamespace
JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = u.child
JOIN pg_class fr ON fr.oid = k.confrelid
JOIN pg_namespace fn ON fn.oid = fr.relnamespace
JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = u.parent
WHERE k.contype = 'f' AND NOT cr.relispartition
"""
_UNIQUE = """
SELECT i.indrelid, i.indkey[0] FROM pg_index i
WHERE i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indkey[0] > 0
"""
_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indisprimary AND i.indrelid = %s ORDER BY array_position(i.indkey, a.attnum)
"""
# Columns whose values are text (strings, JSON, arrays of strings), of user tables.
TEXT_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL), c.relkind,
       CASE WHEN t.typcategory = 'A' THEN 'array'
            WHEN t.typname IN ('json', 'jsonb') THEN 'json' ELSE 'text' END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition AND a.attnum > 0
  AND NOT a.attisdropped AND n.nspname <> ALL (%s) AND n.nspname NOT LIKE 'pg\\_%%'
  AND (t.typcategory = 'S' OR t.typname IN ('json', 'jsonb') OR e.typcategory = 'S')
ORDER BY 1, 2, a.attnum
"""


@dataclass
class Samples:
    """Original values of the masked columns, for the leak probe. In memory only."""

    values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Values masking itself produces (its word lists): finding one proves nothing.
    producible: frozenset[str] = frozenset()
    # Searches the sandbox's data directory for values: the files holding any.
    search_files: Callable[[list[str]], list[str]] | None = None

    def evidence(self) -> list[str]:
        found = {v for values in self.values.values() for v in values}
        return sorted(found - self.producible)


@dataclass
class Planned:
    table: str  # schema.table
    column: Column
    strategy: Strategy
    via: str
    oid: int
    relkind: str


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
            planned, covered = self._resolve(conn)
            report.suspicious = self._scan(conn, covered)
            if self.policy.strict and report.suspicious:
                names = ", ".join(f"{s.table}.{s.column}" for s in report.suspicious)
                raise MaskingIncomplete(
                    f"strict masking: columns that look personal are not in the policy: {names}"
                    '; give each a strategy (or "keep" when it is not personal)',
                    masking=report,
                )
            samples, counts = self._sample(conn, planned)
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

    # -- 1. resolve ---------------------------------------------------------------------
    def _resolve(self, conn: psycopg.Connection[Any]) -> tuple[list[Planned], set[tuple[str, str]]]:
        labelled = {tuple(name.rsplit(".", 1)) for name in self.policy.from_labels}
        wanted = {
            key: (strategy, "anon label" if key in labelled else "policy")
            for key, strategy in self.policy.strategies().items()
        }
        problems = self._follow_foreign_keys(conn, wanted)
        unique = {(oid, attnum) for oid, attnum in conn.execute(_UNIQUE).fetchall()}
        in_keys = {
            (t, c)
            for row in conn.execute(_FOREIGN_KEYS).fetchall()
            for t, c in (row[0:2], row[2:4])
        }
        planned = []
        for (table, column), (strategy, via) in sorted(wanted.items()):
            schema, _, name = table.partition(".")
            row = conn.execute(_CATALOG, (column, schema, name)).fetchone()
            if row is None:
                problems.append(f"{table}: no such table in the restored database")
                continue
            oid, relkind, attnum, generated, not_null, base, declared, max_length = row
            if relkind not in ("r", "p"):
                problems.append(f"{table}: not a table (materialized views are refreshed)")
                continue
            if attnum is None:
                problems.append(f"{table}.{column}: no such column in the restored table")
                continue
            if generated:
                problems.append(f"{table}.{column}: a generated column (mask what it is made of)")
                continue
            if strategy.kind == "null" and not_null:
                problems.append(f"{table}.{column}: NOT NULL, cannot be masked with null")
                continue
            row_key = None
            if strategy.kind == "shift_date" and (table, column) not in in_keys:
                keys = [r[0] for r in conn.execute(_PRIMARY_KEY, (oid,)).fetchall()]
                if keys:
                    row_key = sql.SQL("ROW({})").format(
                        sql.SQL(", ").join(sql.Identifier(k) for k in keys)
                    )
            target = Column(
                table=sql.Identifier(schema, name),
                name=column,
                type=base.rsplit(".", 1)[-1] if base.endswith("citext") else base,
                declared=declared,
                max_length=max_length,
                unique=(oid, attnum) in unique,
                row_key=row_key,
            )
            if strategy.kind != "keep":
                try:
                    expression(target, strategy)
                except ValueError as exc:
                    problems.append(f"{table}.{column}: {exc}")
                    continue
            planned.append(Planned(table, target, strategy, via, oid, relkind))
        if problems:
            raise MaskingFailed(
                "the masking policy does not fit the restored database: "
                + "; ".join(problems[:20]),
                problems=problems,
            )
        return planned, set(wanted)

    def _follow_foreign_keys(
        self, conn: psycopg.Connection[Any], wanted: dict[tuple[str, str], tuple[Strategy, str]]
    ) -> list[str]:
        """Both ends of a foreign key masked alike (a value masks the same everywhere,
        so the key still joins); returns the conflicts."""
        pairs = [((r[0], r[1]), (r[2], r[3])) for r in conn.execute(_FOREIGN_KEYS).fetchall()]
        problems: list[str] = []
        changed = True
        while changed:
            changed = False
            for child, parent in pairs:
                for this, other in ((child, parent), (parent, child)):
                    if this not in wanted or wanted[this][0].kind == "keep":
                        continue
                    strategy = wanted[this][0]
                    if other not in wanted:
                        wanted[other] = (strategy, f"foreign key with {'.'.join(this)}")
                        changed = True
                    elif wanted[other][0] != strategy:
                        problem = (
                            f"{'.'.join(this)} ({strategy}) and {'.'.join(other)} "
                            f"({wanted[other][0]}) are joined by a foreign key: give both the "
                            "same strategy"
                        )
                        if problem not in problems and "foreign key" not in wanted[other][1]:
                            problems.append(problem)
        return problems

    # -- 2. scan ------------------------------------------------------------------------
    def _scan(
        self, conn: psycopg.Connection[Any], covered: set[tuple[str, str]]
    ) -> list[SuspiciousColumn]:
        self._phase("masking: looking for personal data the policy does not cover")
        by_table: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, type_, relkind, _ in conn.execute(
            TEXT_COLUMNS, (list(SYSTEM_SCHEMAS),)
        ).fetchall():
            if relkind != "m" and (f"{schema}.{table}", column) not in covered:
                by_table.setdefault((schema, table), []).append((column, type_))
        suspicious = []
        for (schema, table), columns in by_table.items():
            query = sql.SQL("SELECT {} FROM {} LIMIT {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{}::text").format(sql.Identifier(c)) for c, _ in columns
                ),
                sql.Identifier(schema, table),
                sql.Literal(SCAN_ROWS),
            )
            rows = conn.execute(query).fetchall()
            for index, (column, type_) in enumerate(columns):
                values = [row[index] for row in rows if row[index] is not None]
                reasons = reasons_for(column, values)
                if reasons:
                    suspicious.append(
                        SuspiciousColumn(
                            table=f"{schema}.{table}", column=column, type=type_, reasons=reasons
                        )
                    )
        return suspicious

    # -- 3. sample ----------------------------------------------------------------------
    def _sample(
        self, conn: psycopg.Connection[Any], planned: list[Planned]
    ) -> tuple[Samples, dict[tuple[str, str], int]]:
        """Non-null counts of every masked column, and a sample of the values that replace
        identities (shifted dates and kept columns are not evidence of a leak)."""
        samples = Samples(producible=_producible(planned))
        counts: dict[tuple[str, str], int] = {}
        tables: dict[str, list[Planned]] = {}
        for p in planned:
            if p.strategy.kind != "keep":
                tables.setdefault(p.table, []).append(p)
        for table, columns in tables.items():
            ident = columns[0].column.table
            names = [sql.Identifier(p.column.name) for p in columns]
            row = conn.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(sql.SQL("count({})").format(n) for n in names), ident
                )
            ).fetchone()
            assert row is not None
            for p, count in zip(columns, row, strict=True):
                counts[(table, p.column.name)] = int(count)
            evidence = [p for p in columns if p.strategy.kind not in ("shift_date",)]
            if not evidence:
                continue
            rows = conn.execute(
                sql.SQL("SELECT {} FROM {} LIMIT {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{}::text").format(sql.Identifier(p.column.name)) for p in evidence
                    ),
                    ident,
                    sql.Literal(SAMPLE_ROWS),
                )
            ).fetchall()
            for index, p in enumerate(evidence):
                found: list[str] = []
                for row in rows:
                    value = row[index]
                    if value is None or len(value.strip()) < MIN_SAMPLE_LENGTH or value in found:
                        continue
                    if p.strategy.kind == "fixed" and value == p.strategy.argument:
                        continue
                    found.append(value)
                    if len(found) >= SAMPLES_PER_COLUMN:
                        break
                samples.values[(table, p.column.name)] = found
        return samples, counts

    # -- 4. mask ------------------------------------------------------------------------
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

    # -- 5. leave nothing behind --------------------------------------------------------
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


def _producible(planned: list[Planned]) -> frozenset[str]:
    """Values the masking's word lists can produce, for the strategies that use them."""
    kinds = {p.strategy.kind for p in planned}
    values: set[str] = set()
    if kinds & {"first_name", "name"}:
        values.update(FIRST_NAMES)
    if kinds & {"last_name", "name"}:
        values.update(LAST_NAMES)
    if "city" in kinds:
        values.update(CITIES)
    if "name" in kinds:
        values.update(f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES)
    values.update(p.strategy.argument or "" for p in planned if p.strategy.kind == "fixed")
    return frozenset(values)


@dataclass
class _Clock:
    phases: dict[str, float]
    last: float

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self.last, 3)
        self.last = now
