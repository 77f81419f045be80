"""What one drill establishes: from the backups' descriptions (what the files declare and
carry, known even when the restore fails) and from the restored sandbox (its verdict,
restore time, sequences and the series' declared SQL checks)."""

from __future__ import annotations

from typing import Any

import psycopg

from restorebox.backups.model import Backup
from restorebox.drills.compare import Rules
from restorebox.drills.model import Facts
from restorebox.models import Sandbox, Status

# Declared kinds compared between drills (tables are compared on their own, with rows).
COMPARED = {
    "FUNCTION",
    "PROCEDURE",
    "VIEW",
    "MATERIALIZED VIEW",
    "INDEX",
    "CONSTRAINT",
    "FK CONSTRAINT",
    "TRIGGER",
    "POLICY",
    "SEQUENCE",
    "EXTENSION",
    "SCHEMA",
}
CHECK_TIMEOUT_MS = 30_000


def set_content(backups: list[Backup]) -> str:
    kinds = {b.content for b in backups}
    if "complete" in kinds or {"schema", "data"} <= kinds:
        return "complete"
    return next(iter(kinds)) if len(kinds) == 1 else "unknown"


def from_backups(backups: list[Backup], sandbox: Sandbox | None) -> dict[str, Any]:
    """The facts the files themselves give."""
    rows: dict[str, int] = {}
    known = True
    source = sandbox.restore.source_rows if sandbox and sandbox.restore else {}
    if source:
        rows = dict(source)
    else:
        for backup in backups:
            if backup.row_counts is None:
                known = known and not backup.data_tables
                continue
            for table, count in backup.row_counts.items():
                rows[table] = rows.get(table, 0) + count
    objects = sorted(
        {
            f"{o.kind} {o.namespace}.{o.name}"
            for b in backups
            for o in b.objects
            if o.kind in COMPARED
        }
        | {f"ROLE {role}" for b in backups for role in (*b.roles, *b.creates_roles)}
    )
    tables = sorted(
        {f"{o.namespace}.{o.name}" for b in backups for o in b.objects if o.kind == "TABLE"}
    )
    return {
        "backups": [b.name for b in backups],
        "backup_bytes": sum(b.size_bytes for b in backups),
        "content": set_content(backups),
        "rows": rows,
        "rows_known": known,
        "tables": tables,
        "objects": objects,
        "truncated": [b.name for b in backups if b.ends_complete is False],
    }


def gather(sandbox: Sandbox, backups: list[Backup], rules: Rules) -> Facts:
    facts = Facts(
        **from_backups(backups, sandbox),
        status="ready" if sandbox.status == Status.READY else "failed",
        error=sandbox.error.message if sandbox.error else None,
        verdict=sandbox.verdict,
        failed_probes=[p.name for p in sandbox.probes or [] if p.status == "fail"],
        probes={p.name: p.status for p in sandbox.probes or []},
        restore_seconds=(
            round(sum(s.duration_seconds or 0 for s in sandbox.restore.steps), 3)
            if sandbox.restore
            else None
        ),
    )
    if sandbox.status == Status.READY and sandbox.connection_url:
        _read_sandbox(sandbox.connection_url, facts, rules)
    return facts


def _read_sandbox(url: str, facts: Facts, rules: Rules) -> None:
    """Sequences' last values, and the series' declared checks (each the first value of
    its query, as text)."""
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {CHECK_TIMEOUT_MS}")
        rows = conn.execute(
            "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences"
            " WHERE last_value IS NOT NULL"
        ).fetchall()
        facts.sequences = {name: int(value) for name, value in rows}
        for check in rules.checks:
            try:
                row = conn.execute(check.sql.encode()).fetchone()
                facts.checks[check.name] = None if row is None or row[0] is None else str(row[0])
            except psycopg.Error as exc:
                facts.checks[check.name] = f"error: {str(exc).strip().splitlines()[0]}"
