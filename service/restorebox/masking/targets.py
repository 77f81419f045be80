"""Which columns a policy masks in a restored database, as its catalog has them.

Every policy column must exist, be a plain column of a table, and take its strategy;
a masked column joined to another by a foreign key gives the other side the same
strategy (a value masks the same everywhere, so the key still joins); a column a unique
index covers is noted (its strategy keeps values apart)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from restorebox.errors import MaskingFailed
from restorebox.masking.functions import Column, expression
from restorebox.masking.policy import MaskingPolicy
from restorebox.masking.strategies import Strategy

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


@dataclass
class Planned:
    table: str  # schema.table
    column: Column
    strategy: Strategy
    via: str
    oid: int
    relkind: str


def resolve_columns(
    conn: psycopg.Connection[Any], policy: MaskingPolicy
) -> tuple[list[Planned], set[tuple[str, str]]]:
    """The policy against the restored catalog: each column to mask, as it is there, and
    every column covered (masked or kept, foreign keys followed). Raises MaskingFailed
    naming every column that does not fit."""
    labelled = {tuple(name.rsplit(".", 1)) for name in policy.from_labels}
    wanted = {
        key: (strategy, "anon label" if key in labelled else "policy")
        for key, strategy in policy.strategies().items()
    }
    pairs = [((r[0], r[1]), (r[2], r[3])) for r in conn.execute(_FOREIGN_KEYS).fetchall()]
    problems = _follow_foreign_keys(pairs, wanted)
    unique = {(oid, attnum) for oid, attnum in conn.execute(_UNIQUE).fetchall()}
    in_keys = {end for pair in pairs for end in pair}
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
            "the masking policy does not fit the restored database: " + "; ".join(problems[:20]),
            problems=problems,
        )
    return planned, set(wanted)


def _follow_foreign_keys(
    pairs: list[tuple[tuple[str, str], tuple[str, str]]],
    wanted: dict[tuple[str, str], tuple[Strategy, str]],
) -> list[str]:
    """Both ends of a foreign key masked alike (a value masks the same everywhere,
    so the key still joins); returns the conflicts."""
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
