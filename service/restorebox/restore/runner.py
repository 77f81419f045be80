"""Run a restore plan inside a sandbox container and report what happened.

Backups are streamed into the container (no bind mounts) and loaded there with the
container's own psql / pg_restore, which are as new as the server. The dump is
untrusted: whatever it makes psql do happens inside the unprivileged sandbox."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from restorebox.backups.model import Backup
from restorebox.errors import (
    Cancelled,
    RestoreboxError,
    RestoreFailed,
    RestoreTimeout,
)
from restorebox.models import (
    ErrorGroup,
    PlatformReport,
    Progress,
    RestoreError,
    RestoreReport,
    RestoreStep,
    Sandbox,
)
from restorebox.pg import connect
from restorebox.platforms import Classifier, Profile
from restorebox.platforms.prepare import prepare, prepared_schemas, stand_ins_in_use
from restorebox.restore.aftercare import (
    analyze,
    databases_made,
    empty_tables,
    refresh_matviews,
    source_rows,
)
from restorebox.restore.commands import (
    archive_sql_command,
    pg_restore_command,
    psql_command,
    rewrites_for,
)
from restorebox.restore.errors_parse import StderrCollector
from restorebox.restore.hints import HintContext, hint_for
from restorebox.restore.plan import RestorePlan
from restorebox.restore.rule import Applied
from restorebox.restore.server_config import ServerConfig
from restorebox.restore.server_loss import STOP_GRACE_SECONDS, fail_if_container_gone, server_lost
from restorebox.restore.session import Session
from restorebox.restore.sql_stream import ArchiveSql, plain_sql
from restorebox.restore.translate import creates_public, notes_for, rules_for
from restorebox.restore.uploads import (
    MemberLister,
    ProgressSink,
    bytes_read,
    cleanup_uploads,
    stream_opener,
    upload,
)
from restorebox.runtime import ExecResult, Runtime
from restorebox.sql.rewrite import rewritten

log = logging.getLogger("restorebox.restore")

# Durability is pointless while loading a throwaway copy; it is restored afterwards.
FAST_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",
}
DISK_POLLS = 5  # progress polls (about a second each) between two looks at the disk
STDOUT_KEPT = 64 * 1024  # what the service keeps of a command's stdout (it is discarded)


class RestoreRunner:
    def __init__(
        self,
        runtime: Runtime,
        sandbox: Sandbox,
        *,
        timeout_seconds: float,
        jobs: int,
        cancelled: threading.Event,
        on_progress: ProgressSink,
        members: MemberLister,
        disk_limit: int = 0,
        vacuum: bool = False,
    ) -> None:
        # VACUUM as well as ANALYZE after the load, for a restore a snapshot is kept of:
        # every page's hint bits and the visibility map are then set once, here, instead
        # of by each copy's first read (which writes every page it reads: on a store, each
        # copy would hold the table again).
        self.vacuum = vacuum
        self.members = members
        self.session = Session(
            runtime,
            sandbox,
            timeout_seconds=timeout_seconds,
            cancelled=cancelled,
            disk_limit=disk_limit,
        )
        self.runtime = runtime
        self.sandbox = sandbox
        self.container_id = self.session.container_id
        self.deadline = self.session.deadline
        self.timeout_seconds = timeout_seconds
        self.jobs = jobs
        self.cancelled = cancelled
        self.on_progress = on_progress

    # -- public -----------------------------------------------------------------
    def run(self, plan: RestorePlan, on_error: str) -> RestoreReport:
        try:
            return self._run(plan, on_error)
        except psycopg.OperationalError as exc:  # the server went away under a connection
            raise server_lost(self.session, exc) from exc

    def _run(self, plan: RestorePlan, on_error: str) -> RestoreReport:
        report = RestoreReport(warnings=list(plan.warnings))
        for backup in plan.backups:
            if backup.tool_messages:
                report.warnings.append(
                    f"{backup.name}: {backup.tool_messages} lines of pg_dump's own messages "
                    "at the top of the file (2>&1) were skipped"
                )
            report.warnings += [
                f"{backup.name}: {note}" for note in notes_for(backup, plan.major, plan.profile)
            ]
        started = time.monotonic()
        try:
            with self.session.connect(self.sandbox.initial_database) as conn:
                config = ServerConfig.read(conn)
        except psycopg.Error as exc:  # still reset ALTER SYSTEM afterwards; files unwatched
            log.warning("could not read the server's configuration", extra={"error": str(exc)})
            config = ServerConfig({})
        self._tune(FAST_SETTINGS)
        try:
            return self._load(plan, on_error, report, started)
        finally:  # success or not: a sandbox kept after a failure is served too
            self._put_config_back(config, report)

    def _load(
        self, plan: RestorePlan, on_error: str, report: RestoreReport, started: float
    ) -> RestoreReport:
        classifier = self._prepare_platform(plan, report)
        created = self._create_roles(plan.roles)
        prepared = report.platform.roles_prepared if report.platform else []
        # Roles the dump names that the sandbox lacked, whoever made them.
        report.roles_created = sorted(set(created) | (set(prepared) & set(plan.roles)))
        report.warnings += self._make_connected_databases(plan)
        uploads = upload(self.session, plan, self.members, self.on_progress)
        # With a platform profile the tools run to the end, and errors wholly explained by
        # the platform's pieces are recorded, not fatal; the first error on a user object
        # still fails the sandbox under on_error=stop.
        tool_on_error = "continue" if plan.profile is not None else on_error
        try:
            for index, (backup, remote) in enumerate(zip(plan.backups, uploads, strict=True)):
                self.session.check_time()
                data_only_alone = backup.content == "data" and not any(
                    b.content in ("schema", "complete") for b in plan.backups[:index]
                )
                hints = HintContext(backup.name, data_only_alone, plan.major)
                step, collector, step_notes = self._restore_one(
                    index, len(plan.backups), backup, remote, tool_on_error, hints, plan.profile
                )
                errors = collector.errors
                for error in errors:
                    error.platform = classifier.is_platform_error(error)
                groups = collector.groups
                for group in groups:
                    group.platform = classifier.is_platform_error(
                        RestoreError(
                            backup=group.backup,
                            message=group.first_message,
                            toc_entry=group.first_toc_entry,
                        )
                    )
                report.steps.append(step)
                report.warnings += [f"{backup.name}: {note}" for note in step_notes]
                self.session.check_disk(f"restoring {backup.name}")
                report.errors.extend(errors)
                report.errors_total += step.errors_total
                report.error_groups.extend(groups)
                user_errors = [e for e in errors if not e.platform]
                failed_silently = step.exit_code != 0 and not errors
                if on_error == "stop" and (user_errors or failed_silently):
                    # An engine restart is not the dump's error.
                    fail_if_container_gone(self.session, errors)
                    report.not_loaded = empty_tables(self.session, backup.data_tables)
                    raise RestoreFailed(
                        _failure_message(backup, step, user_errors, groups), report=report
                    )
        finally:
            report.duration_seconds = round(time.monotonic() - started, 3)
        if any(b.content == "data" for b in plan.backups):
            report.warnings += refresh_matviews(self.session)
        report.source_rows = source_rows(self.session, plan, uploads, self.on_progress)
        report.databases = databases_made(self.session, plan)
        self._finish_platform(plan, report)
        cleanup_uploads(self.session)
        analyze(self.session, report.databases, self.jobs, self.vacuum, self.on_progress)
        return report

    def _put_config_back(self, config: ServerConfig, report: RestoreReport) -> None:
        """The restore's speed settings off and whatever the dump changed in the server's
        configuration undone (reported), before any snapshot; never past the deadline's
        reach, and never hiding the restore's own failure."""
        try:
            db = self.sandbox.initial_database
            with connect(self.sandbox, dbname=db, statement_timeout_ms=30_000) as conn:
                report.warnings += config.put_back(
                    conn, self.runtime, self.container_id, FAST_SETTINGS
                )
        except (psycopg.Error, RestoreboxError, OSError) as exc:
            log.warning(
                "could not put the server's configuration back",
                extra={"sandbox": self.sandbox.id, "error": str(exc)[:300]},
            )
            report.warnings.append(
                f"the server's configuration could not be put back after the restore: {exc}"
            )

    def _prepare_platform(self, plan: RestorePlan, report: RestoreReport) -> Classifier:
        if plan.profile is None:
            return Classifier(None)
        self.on_progress(Progress(phase=f"preparing for {plan.profile.name}"))
        with self.session.connect(self.sandbox.initial_database) as conn:
            roles, helpers = prepare(conn, plan.profile, plan.backups, self.sandbox.platform_image)
        report.platform = PlatformReport(
            profile=plan.profile.name,
            evidence=list(plan.evidence),
            roles_prepared=roles,
            helpers=helpers,
        )
        log.info(
            "platform prepared",
            extra={"sandbox": self.sandbox.id, "profile": plan.profile.name, "roles": roles},
        )
        return Classifier(plan.profile, prepared_schemas(helpers))

    def _finish_platform(self, plan: RestorePlan, report: RestoreReport) -> None:
        if report.platform is None:
            return
        declared = {o.name for b in plan.backups for o in b.objects if o.kind == "EXTENSION"}
        with self.session.connect() as conn:
            # The stand-ins the dump asked for (pg_net made for webhooks is a helper).
            report.platform.stand_ins = [e for e in stand_ins_in_use(conn) if e in declared]
        report.platform.gaps = [
            f"{g.count} x {g.template}" for g in report.error_groups if g.platform
        ]

    # -- steps ------------------------------------------------------------------
    def _tune(self, settings: Mapping[str, str | None]) -> None:
        with self.session.connect(self.sandbox.initial_database) as conn:
            for name, value in settings.items():
                if value is None:
                    conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
                else:
                    conn.execute(
                        sql.SQL("ALTER SYSTEM SET {} = {}").format(
                            sql.Identifier(name), sql.Literal(value)
                        )
                    )
            conn.execute("SELECT pg_reload_conf()")

    def _make_way_for_public(self) -> None:
        """An archive that makes its own public schema (pg_dump before 11; a newer one
        whose source's public was made again) finds the sandbox's dropped while it is
        empty: pg_restore then makes it as the source had it, and its `-j` load is not
        ended by "schema public already exists"."""
        with self.session.connect() as conn:
            try:
                conn.execute("DROP SCHEMA public")  # RESTRICT: only an empty one
            except psycopg.errors.DependentObjectsStillExist:
                log.info("public is not empty: kept", extra={"sandbox": self.sandbox.id})

    def _make_connected_databases(self, plan: RestorePlan) -> list[str]:
        """Databases a file \\connects to without creating them (one script of a set per
        database) are made first, empty, as the scripts expect."""
        wanted = [d for b in plan.backups for d in b.connects_without_create]
        if not wanted:
            return []
        made: list[str] = []
        with self.session.connect(self.sandbox.initial_database) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for database in dict.fromkeys(wanted):
                if database not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                    made.append(database)
        return [
            f"database {d} created for the file's \\connect (the file does not create it)"
            for d in made
        ]

    def _create_roles(self, roles: tuple[str, ...]) -> list[str]:
        created: list[str] = []
        if not roles:
            return created
        with self.session.connect(self.sandbox.initial_database) as conn:
            existing = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
            for role in roles:
                if role in existing:
                    continue
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                created.append(role)
        if created:
            log.info("created roles", extra={"sandbox": self.sandbox.id, "roles": created})
        return created

    def _tick(self, sent: list[int], done: int) -> None:
        """Told the bytes of a plain file read so far. A deleted sandbox or the deadline
        ends the stream with an error (raised again by ``exec`` once the command ends),
        never with a quiet early end of input that psql would take for the whole file."""
        if self.cancelled.is_set():
            raise Cancelled("the sandbox was deleted while restoring")
        self.session.check_time()
        sent[0] = done

    def _restore_one(
        self,
        index: int,
        count: int,
        backup: Backup,
        remote: str | None,
        on_error: str,
        hints: HintContext,
        profile: Profile | None,
    ) -> tuple[RestoreStep, StderrCollector, list[str]]:
        data_only = backup.content == "data"
        remaining = max(1, int(self.deadline - time.monotonic()))
        # A file that makes its own databases starts in the maintenance database and
        # connects where it wants.
        start = self.sandbox.initial_database if backup.databases else self.sandbox.database
        env: dict[str, str] = {"PGUSER": self.sandbox.user, "PGDATABASE": start}
        # An archive goes to pg_restore unless its SQL needs rewriting on the way.
        rewrites_archive = bool(rules_for(backup, self.sandbox.postgres_version or 0, profile))
        tool = "psql" if remote is None or rewrites_archive else "pg_restore"
        collector = StderrCollector(tool, backup.name, lambda message: hint_for(message, hints))
        feed_lock = threading.Lock()

        def on_stderr(chunk: bytes) -> None:  # psql's, and pg_restore's beside it
            with feed_lock:
                collector.feed(chunk)

        archive: ArchiveSql | None = None
        applied: Applied | None = None
        stdin: Iterable[bytes] | None = None
        sent = [0]
        if tool == "pg_restore":
            assert remote is not None
            if creates_public(backup):
                self._make_way_for_public()
            argv = pg_restore_command(
                backup, self.sandbox.database, remote, on_error, remaining, self.jobs
            )
        else:
            argv = psql_command(on_error, remaining)
            applied = rewrites_for(backup, self.sandbox, profile)
            source: Iterable[bytes]
            if remote is None:  # plain SQL, read here and streamed in
                source = plain_sql(
                    stream_opener(backup, self.members),
                    backup.compression,
                    backup.tool_messages,
                    lambda done: self._tick(sent, done),
                )
            else:  # an archive that needs rewriting: its SQL comes out and goes back in
                command = archive_sql_command(backup, remote, remaining)
                source = archive = ArchiveSql(self.runtime, self.container_id, command, on_stderr)
            stdin = rewritten(source, applied.rewrites())
            # As pg_dump's own header sets it: a file without that header (a platform's
            # CLI, a hand-edited dump) may make a function before what its body uses.
            options = "-c check_function_bodies=off"
            if data_only:
                # Data-only files load with FK and user triggers off (circular references,
                # audit triggers); the setting lives and dies with psql's session.
                options += " -c session_replication_role=replica"
            env["PGOPTIONS"] = options
        step = RestoreStep(
            backup=backup.name,
            format=backup.format,
            content=backup.content,
            tool=tool,
            bytes=backup.size_bytes,
            triggers_disabled=data_only,
        )
        log.info(
            "restore step",
            extra={
                "sandbox": self.sandbox.id,
                "backup": backup.name,
                "tool": tool,
                "triggers_disabled": data_only,
            },
        )
        started = time.monotonic()
        try:
            result = self._exec_with_progress(
                argv, env, index, count, backup, remote, on_stderr, stdin, sent
            )
        finally:
            if archive is not None:
                archive.abandon()  # psql may have stopped reading: let pg_restore end
        if archive is not None:
            produced = archive.wait(timeout=STOP_GRACE_SECONDS)
            if result.exit_code == 0 and (produced is None or produced.exit_code != 0):
                code = -1 if produced is None else produced.exit_code
                result = ExecResult(code, result.stdout, result.stderr)
        collector.close()
        step.duration_seconds = round(time.monotonic() - started, 3)
        step.exit_code = result.exit_code
        if result.exit_code in (124, 137) and time.monotonic() >= self.deadline - 1:
            raise RestoreTimeout(
                f"restoring {backup.name} did not finish within {self.timeout_seconds:g} seconds",
            )
        if result.exit_code != 0 and not collector.errors:
            tail = "; ".join(collector.text().strip().splitlines()[-5:]) or "no message"
            collector.parser.record(
                RestoreError(
                    backup=backup.name,
                    message=f"{tool} exited with code {result.exit_code}: {tail}",
                )
            )
        step.errors_total = collector.total_errors
        major = self.sandbox.postgres_version
        notes = (
            [f"translated for PostgreSQL {major}: {n}" for n in applied.notes()] if applied else []
        )
        return step, collector, notes + collector.notes

    def _exec_with_progress(
        self,
        argv: list[str],
        env: dict[str, str],
        index: int,
        count: int,
        backup: Backup,
        remote: str | None,
        on_stderr: Callable[[bytes], None],
        stdin: Iterable[bytes] | None,
        sent: list[int],
    ) -> ExecResult:
        # Not a `with` block: leaving it would wait for the command, and a cancelled
        # restore must return at once (removing the container then ends the command).
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore-exec")
        try:
            future = pool.submit(
                self.runtime.exec,
                self.container_id,
                argv,
                env=env,
                on_stderr=on_stderr,
                max_output=STDOUT_KEPT,
                stdin=stdin,
            )
            polls = 0
            while True:
                try:
                    return future.result(timeout=1.0)
                except TimeoutError:
                    pass
                if self.cancelled.is_set():
                    raise Cancelled("the sandbox was deleted while restoring")
                polls += 1
                if polls % DISK_POLLS == 0:  # the engine walks the layer: not every second
                    self.session.check_disk(f"restoring {backup.name}")
                done = sent[0] if remote is None else bytes_read(self.session, remote)
                self.on_progress(
                    Progress(
                        phase="restoring",
                        step=index + 1,
                        steps=count,
                        file=backup.name,
                        bytes_done=min(done, backup.size_bytes),
                        bytes_total=backup.size_bytes,
                    )
                )
        finally:
            pool.shutdown(wait=False)


def _failure_message(
    backup: Backup, step: RestoreStep, errors: list[RestoreError], groups: list[ErrorGroup]
) -> str:
    first = errors[0] if errors else None
    if first is None:
        return f"restoring {backup.name} failed with exit code {step.exit_code}"
    where = f" (line {first.line})" if first.line else ""
    where += f" [{first.toc_entry}]" if first.toc_entry else ""
    message = f"restoring {backup.name} failed{where}: {first.message}"
    hint = next((g.hint for g in groups if g.hint and not g.platform), None)
    return message + (f" (hint: {hint})" if hint else "")
