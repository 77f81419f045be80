"""What a restore does once the data is in: count what the backups carried (archives),
populate materialized views, see which tables stayed empty and which databases were
made, and gather planner statistics."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from restorebox.backups.declared import split_qname
from restorebox.models import Progress
from restorebox.restore.commands import COUNT_AWK
from restorebox.restore.plan import RestorePlan
from restorebox.restore.session import Session

log = logging.getLogger("restorebox.restore")
ProgressSink = Callable[[Progress], None]


def source_rows(
    session: Session, plan: RestorePlan, remotes: list[str | None], on_progress: ProgressSink
) -> dict[str, int]:
    """Rows per table the backups carry. Plain files were counted when catalogued;
    archives are counted here by the sandbox's own pg_restore, which reads them."""
    total: dict[str, int] = {}
    for backup, remote in zip(plan.backups, remotes, strict=True):
        counts = backup.row_counts
        if counts is None and remote is not None:
            on_progress(Progress(phase="counting source rows", file=backup.name))
            result = session.runtime.exec(
                session.container_id,
                [
                    *session.timeout_argv(),
                    "bash",
                    "-o",
                    "pipefail",
                    "-c",
                    f'pg_restore -a -f - "$1" | awk {COUNT_AWK}',
                    "count",
                    remote,
                ],
            )
            counts = {}
            for line in result.stdout.decode("utf-8", "replace").splitlines():
                qname, _, number = line.rpartition(" ")
                if number.isdigit():
                    key = ".".join(split_qname(qname))
                    counts[key] = counts.get(key, 0) + int(number)
        for table, rows in (counts or {}).items():
            total[table] = total.get(table, 0) + rows
    return total


def refresh_matviews(session: Session) -> list[str]:
    """A schema-only file creates materialized views WITH NO DATA and a data-only
    file never refreshes them: once the data is in, populate them (dependencies
    first, by retrying until no more succeed)."""
    notes: list[str] = []
    with session.connect() as conn:
        pending = conn.execute(
            "SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews "
            "WHERE NOT ispopulated ORDER BY 1"
        ).fetchall()
        names = [row[0] for row in pending]
        refreshed: list[str] = []
        failures: dict[str, str] = {}
        progress = True
        while names and progress:
            progress = False
            for name in list(names):
                try:
                    conn.execute(f"REFRESH MATERIALIZED VIEW {name}")
                except psycopg.Error as exc:
                    failures[name] = str(exc).strip()
                    continue
                names.remove(name)
                refreshed.append(name)
                failures.pop(name, None)
                progress = True
    if refreshed:
        notes.append(
            f"refreshed {len(refreshed)} materialized views after the data-only load: "
            + ", ".join(refreshed[:10])
        )
    notes += [f"could not refresh {name}: {error}" for name, error in failures.items()]
    return notes


def empty_tables(session: Session, tables: list[str]) -> list[str]:
    """Which of ``tables`` hold no rows (or do not exist) in the sandbox."""
    empty = []
    try:
        with session.connect() as conn:
            for table in tables:
                schema, name = table.split(".", 1)
                query = sql.SQL("SELECT EXISTS (SELECT FROM {}.{})").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
                try:
                    row = conn.execute(query).fetchone()
                except psycopg.Error:
                    row = None
                if not row or not row[0]:
                    empty.append(table)
    except psycopg.Error:
        return list(tables)
    return empty


def databases_made(session: Session, plan: RestorePlan) -> list[str]:
    """The databases the dumps made that exist now, the sandbox's first."""
    wanted = plan.databases
    if not wanted:
        return []
    with session.connect(session.sandbox.initial_database) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    made = [d for d in wanted if d in existing]
    return sorted(made, key=lambda d: d != session.sandbox.database)


def analyze(
    session: Session, databases: list[str], jobs: int, vacuum: bool, on_progress: ProgressSink
) -> None:
    """Planner statistics for every table, ``jobs`` tables at a time (vacuumdb), then
    the partitioned parents, which vacuumdb leaves out. With ``vacuum``, vacuumed too."""
    on_progress(Progress(phase="vacuuming and analyzing" if vacuum else "analyzing"))
    for database in databases or [session.sandbox.database]:
        result = session.runtime.exec(
            session.container_id,
            [
                *session.timeout_argv(),
                "vacuumdb",
                "--analyze" if vacuum else "--analyze-only",
                "--quiet",
                f"--jobs={jobs}",
                f"--dbname={database}",
            ],
            env={"PGUSER": session.sandbox.user},
        )
        with session.connect(database) as conn:
            if result.exit_code != 0:
                log.warning(
                    "parallel analyze failed; analyzing in one session",
                    extra={"sandbox": session.sandbox.id, "stderr": result.stderr[-500:]},
                )
                conn.execute("ANALYZE")
                continue
            parents = conn.execute(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'"
            ).fetchall()
            for (parent,) in parents:
                conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(parent)))
