"""Probes that read the restore report, check storage with amcheck, or run user assertions."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from ..models import Assertion
from .base import Context, Outcome, first

AMCHECK_SCHEMA = "restorebox_amcheck"


def restore_errors(ctx: Context) -> Outcome:
    report = ctx.report
    if report is None:
        return Outcome("pass", "nothing was restored", {})
    errors = report.errors
    total = max(len(errors), sum(step.errors_total for step in report.steps))
    data = {
        "errors": total,
        "errors_listed": len(errors),
        "first": [e.model_dump(exclude_none=True) for e in first(errors, 10)],
        "not_loaded": report.not_loaded,
    }
    if errors:
        return Outcome(
            "fail", f"the restore reported {total} errors; first: {errors[0].message}", data
        )
    return Outcome("pass", f"{len(report.steps)} restore steps, no errors", data)


def amcheck(ctx: Context) -> Outcome:
    """B-tree structure of every index and, where available, heap consistency of every
    table. Bounded: what the time budget does not reach is reported, not hidden."""
    conn = ctx.conn
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(AMCHECK_SCHEMA)))
    try:
        conn.execute(
            sql.SQL("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {}").format(
                sql.Identifier(AMCHECK_SCHEMA)
            )
        )
        fn = sql.Identifier(AMCHECK_SCHEMA, "bt_index_check")
        heap_fn = sql.Identifier(AMCHECK_SCHEMA, "verify_heapam")
        has_heap = bool(
            ctx.rows("SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'verify_heapam')")[0][0]
        )
        indexes = ctx.rows(
            "SELECT c.oid, c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = "
            "i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE a.amname = 'btree' AND i.indisvalid AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') ORDER BY c.relpages"
        )
        tables = ctx.rows(
            "SELECT c.oid, c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid "
            "= c.relnamespace WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') ORDER BY c.relpages"
        )
        problems: list[dict[str, Any]] = []
        checked_idx = checked_tbl = 0
        for oid, name in indexes:
            if ctx.remaining() < 1:
                break
            try:
                conn.execute(sql.SQL("SELECT {}(%s::regclass, true)").format(fn), (oid,))
                checked_idx += 1
            except psycopg.Error as exc:
                problems.append({"object": name, "error": str(exc).strip()})
        if has_heap:
            for oid, name in tables:
                if ctx.remaining() < 1:
                    break
                rows = ctx.rows(
                    sql.SQL("SELECT blkno, offnum, msg FROM {}(%s::regclass) LIMIT 5").format(
                        heap_fn
                    ),
                    (oid,),
                )
                checked_tbl += 1
                problems += [
                    {"object": name, "block": b, "offset": o, "error": m} for b, o, m in rows
                ]
    finally:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(AMCHECK_SCHEMA))
        )
    data = {
        "indexes_checked": checked_idx,
        "indexes": len(indexes),
        "tables_checked": checked_tbl,
        "tables": len(tables) if has_heap else 0,
        "problems": first(problems, 50),
    }
    if problems:
        return Outcome(
            "fail",
            f"amcheck found {len(problems)} problems, first in "
            f"{problems[0]['object']}: {problems[0]['error']}",
            data,
        )
    unchecked = (len(indexes) - checked_idx) + ((len(tables) - checked_tbl) if has_heap else 0)
    if unchecked:
        return Outcome("warn", f"time budget reached: {unchecked} relations were not checked", data)
    return Outcome(
        "pass", f"{checked_idx} btree indexes and {checked_tbl} tables are consistent", data
    )


def run_assertion(ctx: Context, assertion: Assertion) -> Outcome:
    """A user's SQL, run read-only; it must return one row whose first column is true."""
    started = time.monotonic()
    try:
        with ctx.conn.transaction():
            ctx.conn.execute("SET TRANSACTION READ ONLY")
            rows = ctx.rows(assertion.sql)
    except psycopg.Error as exc:
        return Outcome(
            "fail", f"the assertion's SQL failed: {str(exc).strip()}", {"sql": assertion.sql}
        )
    value = rows[0][0] if rows and rows[0] else None
    data = {
        "sql": assertion.sql,
        "result": str(value)[:200],
        "seconds": round(time.monotonic() - started, 3),
    }
    if value is True:
        return Outcome("pass", "holds", data)
    return Outcome(
        "fail", f"does not hold (first column of the first row is {value!r}, expected true)", data
    )
