"""Masking by reloading tables, the way pg_restore loads them.

Updating every row of a table writes each row twice (the new version, then the rewrite
that removes the old one) and maintains every index row by row. A table that allows it
is instead reloaded: its rows, masked, are written aside (unlogged, in block ranges on
several connections at once); then, in one transaction over every such table, the
foreign keys that touch them and their indexes are dropped, the tables emptied
(TRUNCATE: new files, the old ones removed at commit), the masked rows put back, and
the indexes, constraints and foreign keys made again from their own definitions (sorted
index builds; each foreign key validated against the masked rows).

Tables that do not allow it (partitioned, inherited, with INSERT rules, indexes in
another tablespace or with their own statistics targets) are masked by UPDATE instead
(see ``apply``). If the reload transaction fails it is rolled back whole, and its tables
fall back to UPDATE too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from restorebox.masking.functions import HELPERS

SPLIT_PAGES = 2048  # a table this large (16 MB) is masked in block ranges, in parallel

# Tables a reload may take: plain, on their own, nothing that rewrites an INSERT, no
# index property a definition does not carry.
_RELOADABLE = """
SELECT c.oid FROM pg_class c
WHERE c.oid = ANY (%s) AND c.relkind = 'r' AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.ev_type = '3')
  AND NOT EXISTS (
    SELECT 1 FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
    WHERE x.indrelid = c.oid AND (ic.reltablespace <> 0 OR EXISTS (
      SELECT 1 FROM pg_attribute a
      WHERE a.attrelid = x.indexrelid AND coalesce(a.attstattarget, -1) >= 0)))
"""
_COLUMNS = """
SELECT attname FROM pg_attribute
WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
ORDER BY attnum
"""
# Every index of the tables, with the constraint it backs (if any).
_INDEXES = """
SELECT x.indrelid, n.nspname, ic.relname, pg_get_indexdef(x.indexrelid), con.conname,
       pg_get_constraintdef(con.oid), x.indisclustered, x.indisreplident,
       coalesce(obj_description(con.oid, 'pg_constraint'),
                obj_description(x.indexrelid, 'pg_class'))
FROM pg_index x
JOIN pg_class ic ON ic.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
     AND con.contype IN ('p', 'u', 'x')
WHERE x.indrelid = ANY (%s)
ORDER BY x.indrelid, x.indexrelid
"""
# Foreign keys from or to the tables (a partition's copies go with their parent's).
_FOREIGN_KEYS = """
SELECT DISTINCT con.oid, con.conrelid, con.conname, pg_get_constraintdef(con.oid),
       obj_description(con.oid, 'pg_constraint')
FROM pg_constraint con
WHERE con.contype = 'f' AND con.conparentid = 0
  AND (con.conrelid = ANY (%s) OR con.confrelid = ANY (%s))
ORDER BY con.oid
"""


@dataclass
class Table:
    oid: int
    name: sql.Composable  # qualified
    values: dict[str, sql.Composable]  # column -> its masked value
    pages: int = 0
    stash: list[sql.Composable] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # those an INSERT takes, in order


def reloadable(conn: psycopg.Connection[Any], oids: list[int]) -> set[int]:
    return {row[0] for row in conn.execute(_RELOADABLE, (oids,)).fetchall()}


def stash_jobs(conn: psycopg.Connection[Any], table: Table, workers: int) -> list[sql.Composed]:
    """Make the table's stashes (unlogged, its columns, no index) and return the
    statements that fill them with its masked rows, one per block range."""
    table.columns = [row[0] for row in conn.execute(_COLUMNS, (table.oid,)).fetchall()]
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in table.columns)
    select = sql.SQL(", ").join(table.values.get(c, sql.Identifier(c)) for c in table.columns)
    jobs = []
    for index, where in enumerate(block_ranges(table.pages, workers)):
        stash = sql.Identifier(HELPERS, f"stash_{table.oid}_{index}")
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(stash, table.name))
        table.stash.append(stash)
        jobs.append(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM ONLY {}{}").format(
                stash, listed, select, table.name, where
            )
        )
    return jobs


def swap(
    conn: psycopg.Connection[Any], tables: list[Table], on_step: Callable[[str], None]
) -> None:
    """Put the masked rows in place of the originals, in one transaction."""
    oids = [t.oid for t in tables]
    names = {t.oid: t.name for t in tables}
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        keys = conn.execute(_FOREIGN_KEYS, (oids, oids)).fetchall()
        indexes = conn.execute(_INDEXES, (oids,)).fetchall()
        owners = {
            oid: sql.SQL(name)
            for oid, name in conn.execute(
                "SELECT oid, oid::regclass::text FROM pg_class WHERE oid = ANY (%s)",
                ([k[1] for k in keys],),
            ).fetchall()
        }
        on_step("dropping keys and indexes")
        for _, owner, name, _, _ in keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    owners[owner], sql.Identifier(name)
                )
            )
        for oid, schema, index, _, constraint, _, _, _, _ in indexes:
            if constraint is not None:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        names[oid], sql.Identifier(constraint)
                    )
                )
            else:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index)))
        on_step("putting the masked rows back")
        conn.execute(sql.SQL("TRUNCATE ONLY {}").format(sql.SQL(", ").join(t.name for t in tables)))
        for table in tables:
            listed = sql.SQL(", ").join(sql.Identifier(c) for c in table.columns)
            source = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {} FROM {}").format(listed, stash) for stash in table.stash
            )
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE {}").format(
                    table.name, listed, source
                )
            )
        on_step("building indexes and keys")
        for row in indexes:
            oid, schema, index, definition, constraint, condef, clustered, replident, comment = row
            if constraint is not None:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        names[oid], sql.Identifier(constraint), sql.SQL(condef)
                    )
                )
            else:
                conn.execute(sql.SQL(definition))
            if comment is not None:
                subject = (
                    sql.SQL("CONSTRAINT {} ON {}").format(sql.Identifier(constraint), names[oid])
                    if constraint is not None
                    else sql.SQL("INDEX {}").format(sql.Identifier(schema, index))
                )
                conn.execute(sql.SQL("COMMENT ON {} IS {}").format(subject, sql.Literal(comment)))
            if clustered:
                conn.execute(
                    sql.SQL("ALTER TABLE {} CLUSTER ON {}").format(
                        names[oid], sql.Identifier(index)
                    )
                )
            if replident:
                conn.execute(
                    sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(
                        names[oid], sql.Identifier(index)
                    )
                )
        for _, owner, name, definition, comment in keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    owners[owner], sql.Identifier(name), sql.SQL(definition)
                )
            )
            if comment is not None:
                conn.execute(
                    sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
                        sql.Identifier(name), owners[owner], sql.Literal(comment)
                    )
                )


def drop_stashes(conn: psycopg.Connection[Any], tables: list[Table]) -> None:
    for table in tables:
        for stash in table.stash:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stash))


def block_ranges(pages: int, workers: int) -> list[sql.Composable]:
    """WHERE clauses covering a table in ``workers`` block ranges (one when small). The
    last range is open-ended: rows an update moves past it are new versions, which that
    statement's snapshot does not see."""
    if pages < SPLIT_PAGES or workers < 2:
        return [sql.SQL("")]
    step = -(-pages // workers)
    out: list[sql.Composable] = []
    for index in range(workers):
        low = sql.Literal(f"({index * step},0)")
        if index == workers - 1:
            out.append(sql.SQL(" WHERE ctid >= {}::tid").format(low))
        else:
            high = sql.Literal(f"({(index + 1) * step},0)")
            out.append(sql.SQL(" WHERE ctid >= {}::tid AND ctid < {}::tid").format(low, high))
    return out
