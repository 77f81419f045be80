"""Probes on the data: rows, empty restores, orphaned references, lagging sequences."""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from restorebox.probes.base import Context, Outcome, first, qualified

USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""


# Tables an extension owns whose rows pg_dump carries (pg_extension_config_dump), with
# the filter it dumps them by: the rows the extension's own install puts there (PostGIS's
# spatial_ref_sys) are not the backup's, and are not counted.
EXTENSION_CONFIG = """
SELECT n.nspname || '.' || c.relname, coalesce(cfg.cond, '')
FROM pg_extension e
CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS cfg(reloid, cond)
JOIN pg_class c ON c.oid = cfg.reloid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
"""


def _count(ctx: Context, schema: str, table: str, condition: str = "") -> int | None:
    # ONLY: a dump carries each table's own rows; inheritance children and partitions
    # are counted as the tables they are.
    query = sql.SQL("SELECT count(*) FROM ONLY {} {}").format(
        qualified(schema, table),
        sql.SQL(condition),  # the server's own catalog text
    )
    row = ctx.rows(query)
    return int(row[0][0]) if row else None


def row_parity(ctx: Context) -> Outcome:
    expected = ctx.report.source_rows if ctx.report else {}
    if not expected:
        return Outcome("pass", "the backups carry no table data", {"tables": 0})
    existing = {f"{s}.{t}" for s, t in ctx.rows(USER_TABLES)}
    config = {table: condition for table, condition in ctx.rows(EXTENSION_CONFIG)}
    mismatches: list[dict[str, Any]] = []
    for table, rows in sorted(expected.items()):
        if table not in existing:
            mismatches.append({"table": table, "expected": rows, "actual": None})
            continue
        schema, name = table.split(".", 1)
        actual = _count(ctx, schema, name, config.get(table, ""))
        if actual != rows:
            mismatches.append({"table": table, "expected": rows, "actual": actual})
    platform = [m for m in mismatches if ctx.platform.is_platform_schema(m["table"].split(".")[0])]
    mismatches = [m for m in mismatches if m not in platform]
    data = {
        "tables": len(expected),
        "rows_expected": sum(expected.values()),
        "mismatches": first(mismatches, 50),
        "platform_mismatches": first(platform, 50),
        "extension_tables": sorted(t for t in config if t in expected),
    }
    if platform and not mismatches:
        worst = ", ".join(f"{m['table']} {m['actual']}/{m['expected']}" for m in platform[:5])
        return Outcome(
            "warn",
            f"your tables hold exactly the backup's rows; {len(platform)} platform tables "
            f"differ (actual/expected): {worst}",
            data,
        )
    if mismatches:
        worst = ", ".join(f"{m['table']} {m['actual']}/{m['expected']}" for m in mismatches[:5])
        return Outcome(
            "fail",
            f"{len(mismatches)} of {len(expected)} tables differ from the "
            f"backup (actual/expected): {worst}",
            data,
        )
    return Outcome(
        "pass",
        f"all {len(expected)} tables hold exactly the rows the backup "
        f"carries ({sum(expected.values())} rows)",
        data,
    )


_NAMED_LIKE_DATA = re.compile(r"complete|full|data|all|backup", re.IGNORECASE)


def empty_data(ctx: Context) -> Outcome:
    total = 0
    for schema, table in ctx.rows(USER_TABLES):
        row = ctx.rows(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(qualified(schema, table)))
        if row and row[0][0]:
            total += 1
    data = {"tables_with_rows": total}
    suspicious = [
        b.name
        for b in ctx.backups
        if b.content == "schema"
        and _NAMED_LIKE_DATA.search(b.name.rsplit("/", 1)[-1])
        and "schema" not in b.name.lower()
    ]
    carrying = [b.name for b in ctx.backups if b.content in ("data", "complete")]
    if total == 0 and carrying:
        return Outcome(
            "warn", f"{', '.join(carrying)} should carry data but no table has a row", data
        )
    if total == 0 and suspicious:
        return Outcome(
            "warn",
            f"{', '.join(suspicious)} is named like a full backup but holds "
            "only the schema: the sandbox has no data",
            {**data, "schema_only": suspicious},
        )
    if total == 0:
        return Outcome("pass", "schema-only restore: no data was expected", data)
    return Outcome("pass", f"{total} tables hold rows", data)


FOREIGN_KEYS = """
SELECT con.conname, cn.nspname, cl.relname, pn.nspname, pl.relname,
       array_agg(ca.attname ORDER BY k.ord), array_agg(pa.attname ORDER BY k.ord)
FROM pg_constraint con
JOIN pg_class cl ON cl.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl ON pl.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pl.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child, parent, ord)
JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.child
JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent
WHERE con.contype = 'f' AND cl.relkind IN ('r', 'p') AND con.conparentid = 0
GROUP BY con.oid, con.conname, cn.nspname, cl.relname, pn.nspname, pl.relname
ORDER BY 2, 3, 1
"""


def fk_orphans(ctx: Context) -> Outcome:
    """Rows whose referenced row is missing. Loads with triggers off skip FK checks and
    the constraint still looks valid afterwards, so only an anti-join can tell."""
    orphans: list[dict[str, Any]] = []
    keys = ctx.rows(FOREIGN_KEYS)
    for name, cschema, ctable, pschema, ptable, ccols, pcols in keys:
        child = sql.Identifier("c")
        parent = sql.Identifier("p")
        not_null = sql.SQL(" AND ").join(
            sql.SQL("{}.{} IS NOT NULL").format(child, sql.Identifier(c)) for c in ccols
        )
        join = sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(parent, sql.Identifier(p), child, sql.Identifier(c))
            for c, p in zip(ccols, pcols, strict=True)
        )
        select_cols = sql.SQL(", ").join(
            sql.SQL("{}.{}").format(child, sql.Identifier(c)) for c in ccols
        )
        where = sql.SQL("{nn} AND NOT EXISTS (SELECT FROM {pt} p WHERE {join})").format(
            nn=not_null, pt=qualified(pschema, ptable), join=join
        )
        count_q = sql.SQL("SELECT count(*) FROM {ct} c WHERE {w}").format(
            ct=qualified(cschema, ctable), w=where
        )
        (count,) = ctx.rows(count_q)[0]
        if count:
            sample_q = sql.SQL("SELECT {cols} FROM {ct} c WHERE {w} LIMIT 5").format(
                cols=select_cols, ct=qualified(cschema, ctable), w=where
            )
            sample = [dict(zip(ccols, map(str, r), strict=True)) for r in ctx.rows(sample_q)]
            orphans.append(
                {
                    "table": f"{cschema}.{ctable}",
                    "constraint": name,
                    "references": f"{pschema}.{ptable}",
                    "count": int(count),
                    "sample": sample,
                }
            )
    data = {"foreign_keys": len(keys), "orphans": first(orphans, 50)}
    if orphans:
        summary = ", ".join(f"{o['table']}.{o['constraint']}: {o['count']}" for o in orphans[:5])
        return Outcome(
            "fail",
            f"{sum(o['count'] for o in orphans)} rows reference missing rows ({summary})",
            data,
        )
    return Outcome("pass", f"every row satisfies all {len(keys)} foreign keys", data)


# Sequences a column draws from: owned by it (serial, identity), or named by its default
# (DEFAULT nextval('s') without OWNED BY).
USED_SEQUENCES = """
WITH used AS (
    SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS att
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION
    SELECT d.refobjid, ad.adrelid, ad.adnum
    FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
)
SELECT s.schemaname, s.sequencename, s.last_value, s.start_value, s.increment_by,
       tn.nspname, t.relname, a.attname
FROM used u
JOIN pg_class sc ON sc.oid = u.seq AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
JOIN pg_sequences s ON s.schemaname = sn.nspname AND s.sequencename = sc.relname
JOIN pg_class t ON t.oid = u.rel JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = u.att
ORDER BY 1, 2, 6, 7, 8
"""


def _next_in_source(ctx: Context, sequence: str, step: int) -> int | None:
    """What nextval would have returned next in the source, per the dump's own setval."""
    for backup in ctx.backups:
        if sequence in backup.sequence_values:
            value, called = backup.sequence_values[sequence]
            return value + step if called else value
    return None


def _next_here(ctx: Context, schema: str, name: str, step: int) -> int:
    ((last, called),) = ctx.rows(
        sql.SQL("SELECT last_value, is_called FROM {}").format(qualified(schema, name))
    )
    return int(last) + step if called else int(last)


def sequence_lag(ctx: Context) -> Outcome:
    behind: list[dict[str, Any]] = []
    sequences = ctx.rows(USED_SEQUENCES)
    for sschema, sname, last, start, step, tschema, table, column in sequences:
        q = sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(column), qualified(tschema, table)
        )
        try:
            (top,) = ctx.rows(q)[0]
            top = int(top) if top is not None else None
        except (TypeError, ValueError):
            continue
        if top is None:
            continue
        current = last if last is not None else start - step
        if (step > 0 and top > current) or (step < 0 and top < current):
            name = f"{sschema}.{sname}"
            behind.append(
                {
                    "sequence": name,
                    "column": f"{tschema}.{table}.{column}",
                    "sequence_value": current,
                    "column_max": top,
                    # The dump itself set it there: production is behind too.
                    "as_in_source": _next_in_source(ctx, name, step)
                    == _next_here(ctx, sschema, sname, step),
                }
            )
    data = {"sequences": len(sequences), "behind": first(behind, 50)}
    lost = [b for b in behind if not b["as_in_source"]]
    source = [b for b in behind if b["as_in_source"]]

    def listed(items: list[dict[str, Any]]) -> str:
        return ", ".join(
            f"{b['sequence']} at {b['sequence_value']} < {b['column']} {b['column_max']}"
            for b in items[:5]
        )

    if lost:
        return Outcome(
            "fail",
            f"{len(lost)} sequences are behind their data, further than the backup left "
            f"them; the next insert would collide ({listed(lost)})",
            data,
        )
    if source:
        return Outcome(
            "warn",
            f"{len(source)} sequences are behind their data as in the source: the backup's "
            "own setval leaves them there, so the next insert would collide there too "
            f"({listed(source)}); fix the source with setval(max(column))",
            data,
        )
    return Outcome("pass", f"all {len(sequences)} used sequences are ahead of their data", data)
