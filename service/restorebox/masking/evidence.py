"""What is known of the original values before masking: which uncovered columns look
personal (the scan), and a sample of each masked column's values with its non-null count
(the ``masking_leaks`` probe searches for the sample afterwards; it stays in memory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from restorebox.masking.functions import HELPERS
from restorebox.masking.model import SuspiciousColumn
from restorebox.masking.scan import reasons_for
from restorebox.masking.targets import Planned
from restorebox.masking.words import CITIES, FIRST_NAMES, LAST_NAMES

SAMPLE_ROWS = 500
SAMPLES_PER_COLUMN = 50
SCAN_ROWS = 200
MIN_SAMPLE_LENGTH = 4
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", HELPERS)
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


def scan_uncovered(
    conn: psycopg.Connection[Any], covered: set[tuple[str, str]]
) -> list[SuspiciousColumn]:
    """Every text-like column of a table the policy does not cover that looks personal
    (by its name, or a sample of its first rows: see ``scan``)."""
    by_table: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, type_, relkind, _ in conn.execute(
        TEXT_COLUMNS, (list(SYSTEM_SCHEMAS),)
    ).fetchall():
        if relkind != "m" and (f"{schema}.{table}", column) not in covered:
            by_table.setdefault((schema, table), []).append((column, type_))
    suspicious = []
    for (schema, table), columns in by_table.items():
        query = sql.SQL("SELECT {} FROM {} LIMIT {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c, _ in columns),
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


def sample_originals(
    conn: psycopg.Connection[Any], planned: list[Planned]
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
