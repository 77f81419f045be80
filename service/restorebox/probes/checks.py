"""Probes that read the restore report, check storage with amcheck, or run user assertions."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from restorebox.models import Assertion
from restorebox.probes.base import Context, Outcome, first

AMCHECK_SCHEMA = "restorebox_amcheck"


def restore_errors(ctx: Context) -> Outcome:
    """Errors on the user's objects fail; errors wholly about a managed platform's pieces
    (its roles, schemas, extensions; see platforms/) only warn."""
    report = ctx.report
    if report is None:
        return Outcome("pass", "nothing was restored", {})
    errors = report.errors
    total = max(len(errors), report.errors_total)
    user = [e for e in errors if not e.platform]
    platform = [g for g in report.error_groups if g.platform]
    data = {
        "errors": total,
        "errors_listed": len(errors),
        "user_errors": len(user),
        "platform_errors": sum(g.count for g in platform),
        "groups": [g.model_dump(exclude_none=True) for g in first(report.error_groups, 20)],
        "first": [e.model_dump(exclude_none=True) for e in first(user or errors, 10)],
        "not_loaded": report.not_loaded,
    }
    if user:
        return Outcome(
            "fail", f"the restore reported {total} errors; first: {user[0].message}", data
        )
    if errors:
        gaps = ", ".join(f"{g.count} x {g.template}" for g in platform[:3])
        return Outcome(
            "warn",
            f"{total} errors, all about the platform's own pieces (not your data): {gaps}",
            data,
        )
    return Outcome("pass", f"{len(report.steps)} restore steps, no errors", data)


HEAPALLINDEXED_MAX_BYTES = 256 * 1024 * 1024


def _amcheck_schema(ctx: Context) -> str | None:
    """Where amcheck is installed already (a dump may install it itself), or None."""
    rows = ctx.rows(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'amcheck'"
    )
    return str(rows[0][0]) if rows else None


def amcheck(ctx: Context) -> Outcome:
    """B-tree structure of every index and, where available, heap consistency of every
    table. Bounded: what the time budget does not reach is reported, not hidden. Uses the
    dump's own amcheck when it installed one; otherwise installs it in a schema of its
    own and drops only that afterwards."""
    conn = ctx.conn
    schema = _amcheck_schema(ctx)
    ours = schema is None
    if ours:
        schema = AMCHECK_SCHEMA
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    assert schema is not None
    try:
        if ours:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {}").format(
                    sql.Identifier(schema)
                )
            )
        fn = sql.Identifier(schema, "bt_index_check")
        heap_fn = sql.Identifier(schema, "verify_heapam")
        has_heap = bool(
            ctx.rows(
                "SELECT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid ="
                " p.pronamespace WHERE p.proname = 'verify_heapam' AND n.nspname = %s)",
                (schema,),
            )[0][0]
        )
        # relkind 'i' only: partitioned indexes ('I') hold no data of their own (their
        # partitions' indexes are checked), and other sessions' temporary relations
        # cannot be read.
        # With each index, the size of its table: heapallindexed (every heap tuple looked
        # up in the index) costs several heap scans, so it is done for tables up to
        # HEAPALLINDEXED_MAX_BYTES; bigger ones get the structure check, and their heap
        # is verified by verify_heapam below.
        indexes = ctx.rows(
            "SELECT c.oid, c.oid::regclass::text, pg_relation_size(i.indrelid) <= %s "
            "FROM pg_index i JOIN pg_class c ON c.oid = "
            "i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE a.amname = 'btree' AND c.relkind = 'i' AND i.indisvalid "
            "AND i.indisready AND c.relpersistence <> 't' AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') ORDER BY c.relpages",
            (HEAPALLINDEXED_MAX_BYTES,),
        )
        tables = ctx.rows(
            "SELECT c.oid, c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid "
            "= c.relnamespace WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "ORDER BY c.relpages"
        )
        problems: list[dict[str, Any]] = []
        checked_idx = checked_tbl = fully = 0
        for oid, name, heapallindexed in indexes:
            if ctx.remaining() < 1:
                break
            try:
                conn.execute(
                    sql.SQL("SELECT {}(%s::regclass, %s)").format(fn), (oid, heapallindexed)
                )
                checked_idx += 1
                fully += bool(heapallindexed)
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
        if ours:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    data = {
        "indexes_checked": checked_idx,
        "indexes_heapallindexed": fully,
        "indexes": len(indexes),
        "tables_checked": checked_tbl,
        "tables": len(tables) if has_heap else 0,
        "amcheck_schema": schema,
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
    also = f" ({fully} also against every heap tuple)" if fully < checked_idx else ""
    return Outcome(
        "pass", f"{checked_idx} btree indexes{also} and {checked_tbl} tables are consistent", data
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
