"""The ``masking_leaks`` probe: does any original value of a masked column remain?

Masking sampled the original values of every masked column before it ran (kept in
memory, never stored). Here every text-like column of every table and materialized view
is searched for them (equal values; inside JSON documents and text arrays as elements),
and so are the data directory's files. Any hit fails the verdict, naming where; the
values themselves are never reported."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from restorebox.masking.evidence import SYSTEM_SCHEMAS, TEXT_COLUMNS
from restorebox.probes.base import Context, Outcome, qualified


def _like(value: str) -> str:
    quoted = json.dumps(value, ensure_ascii=False)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def masking_leaks(ctx: Context) -> Outcome:
    samples = ctx.masking
    if samples is None:
        return Outcome("pass", "the sandbox is not masked")
    evidence = samples.evidence()
    if not evidence:
        return Outcome("pass", "no original value was sampled (the masked columns are empty)")
    params = {"v": evidence, "j": [_like(v) for v in evidence]}
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, _, _, kind in ctx.rows(TEXT_COLUMNS, (list(SYSTEM_SCHEMAS),)):
        tables.setdefault((schema, table), []).append((column, kind))
    leaks: list[dict[str, Any]] = []
    unsearched = []
    for (schema, table), columns in tables.items():
        if ctx.remaining() <= 0:
            unsearched.append(f"{schema}.{table}")
            continue
        tests = []
        for column, kind in columns:
            c = sql.Identifier(column)
            if kind == "json":
                test = sql.SQL("{}::text LIKE ANY (%(j)s)").format(c)
            elif kind == "array":
                test = sql.SQL("{}::text[] && %(v)s::text[]").format(c)
            else:
                test = sql.SQL("{}::text = ANY (%(v)s)").format(c)
            tests.append(sql.SQL("count(*) FILTER (WHERE {})").format(test))
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(tests), qualified(schema, table)
        )
        counts = ctx.rows(query, params)[0]
        for (column, _), count in zip(columns, counts, strict=True):
            if count:
                leaks.append({"table": f"{schema}.{table}", "column": column, "values": int(count)})
    files = samples.search_files(evidence) if samples.search_files is not None else []
    leaks += [{"table": "-", "column": f, "values": 1, "where": "file"} for f in files]
    data: dict[str, Any] = {"searched_values": len(evidence), "leaks": leaks}
    if leaks:
        where = ", ".join(
            f"{x['table']}.{x['column']} ({x['values']} rows)"
            if x.get("where") != "file"
            else f"file {x['column']}"
            for x in leaks[:20]
        )
        return Outcome("fail", f"original values of masked columns remain in: {where}", data)
    if unsearched:
        data["unsearched"] = unsearched
        return Outcome(
            "warn",
            f"no original value found, but {len(unsearched)} tables were not searched in "
            "the probes' time budget",
            data,
        )
    return Outcome(
        "pass",
        f"none of {len(evidence)} sampled original values remains in any text column or file",
        data,
    )
