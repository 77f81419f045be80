from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from restorebox.backups.model import Backup, major_of
from restorebox.errors import InvalidRequest, NoSuitablePostgres
from restorebox.lifecycle.records import database_name_for
from restorebox.restore.errors_parse import PsqlParser, parse_pg_restore, parse_psql
from restorebox.restore.plan import make_plan


def backup(server: str | None, dump: str | None, roles: list[str] | None = None) -> Backup:
    return Backup(
        name=f"b{server}{dump}",
        format="plain",
        compression="none",
        content="complete",
        size_bytes=1,
        sha256="0",
        source_server_version=server,
        pg_dump_version=dump,
        roles=roles or [],
        path=Path("/x"),
    )


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("15.4", 15),
        ("15beta2", 15),
        ("9.6.24", 9),
        ("17.12 (Debian)", 17),
        (None, None),
        ("", None),
    ],
)
def test_major_of(version: str | None, major: int | None) -> None:
    assert major_of(version) == major


def test_plan_picks_the_oldest_sufficient_major() -> None:
    assert make_plan([backup("12.11", "15beta2")], [15, 17], None, 17).major == 15
    assert make_plan([backup("15.1", "17.2")], [15, 17], None, 17).major == 17
    assert make_plan([backup(None, None)], [15, 17], None, 17).major == 17
    assert make_plan([backup("12", "15")], [15, 17], 17, 17).major == 17
    plan = make_plan(
        [backup("15", "15", ["b", "a"]), backup("15", "15", ["a"])], [15, 17], None, 17
    )
    assert plan.roles == ("a", "b")


def test_plan_refuses_only_what_cannot_work() -> None:
    archive = backup("15", "17.0").model_copy(
        update={"format": "custom", "archive_version": "1.16"}
    )
    with pytest.raises(NoSuitablePostgres, match=r"pg_restore 15 cannot read.*needs PostgreSQL 17"):
        make_plan([archive], [15, 17], 15, 17)
    with pytest.raises(NoSuitablePostgres, match="needs PostgreSQL 18"):
        make_plan([backup("18.0", "18.0")], [15, 17], None, 17)
    with pytest.raises(InvalidRequest, match="not configured"):
        make_plan([], [15, 17], 16, 17)


def test_a_newer_pg_dump_than_any_image_uses_the_newest_server_that_qualifies() -> None:
    plan = make_plan([backup("17.6", "18.1")], [15, 17], None, 17)
    assert plan.major == 17
    assert "pg_dump 18.1" in plan.warnings[0]
    assert "translated" in plan.warnings[0]


def test_an_explicit_older_major_is_honoured_with_a_warning() -> None:
    plan = make_plan([backup("17.2", "17.2")], [15, 17], 15, 17)
    assert plan.major == 15
    assert "older than the server" in plan.warnings[0]
    plain_newer_tools = make_plan([backup("15", "17.0")], [15, 17], 15, 17)
    assert plain_newer_tools.major == 15


def test_parse_psql_errors_with_lines_and_statements() -> None:
    stderr = (
        'psql:<stdin>:2: ERROR:  relation "t" already exists\n'
        "psql:<stdin>:2: STATEMENT:  create table t(a int);\n"
        'psql:<stdin>:3: ERROR:  relation "nope" does not exist\n'
        "LINE 1: insert into nope values (1);\n"
        "                    ^\n"
        "psql:<stdin>:3: STATEMENT:  insert into nope\n"
        "\tvalues (1);\n"
        "psql:<stdin>:9: invalid command \\foo\n"
    )
    errors = parse_psql(stderr, "x.sql")
    assert [(e.line, e.message) for e in errors] == [
        (2, 'relation "t" already exists'),
        (3, 'relation "nope" does not exist'),
        (9, "invalid command \\foo"),
    ]
    assert errors[1].statement == "insert into nope\n\tvalues (1);"


def test_parse_pg_restore_errors_with_toc_entries() -> None:
    stderr = (
        'pg_restore: creating TABLE "public.t"\n'
        'pg_restore: error: could not execute query: ERROR:  relation "t" already exists\n'
        "Command was: CREATE TABLE public.t (\n    a integer NOT NULL\n);\n\n\n"
        'pg_restore: processing data for table "public.t"\n'
        'pg_restore: error: COPY failed for table "t": ERROR:  duplicate key value\n'
        "DETAIL:  Key (a)=(1) already exists.\n"
        "pg_restore: warning: errors ignored on restore: 2\n"
    )
    errors = parse_pg_restore(stderr, "x.dump")
    assert [e.toc_entry for e in errors] == ["TABLE public.t", "TABLE DATA public.t"]
    assert errors[0].message == 'relation "t" already exists'
    assert errors[0].statement is not None
    assert errors[0].statement.startswith("CREATE TABLE public.t (")
    assert errors[1].detail == "DETAIL:  Key (a)=(1) already exists."


@pytest.mark.parametrize(
    ("names", "db"),
    [
        ([], "sandbox"),
        (["app_schema.sql", "app_data.sql"], "app_schema"),
        (["dumps/Factory-Pulse.sql.gz"], "factory_pulse"),
        (["2025.dump"], "db_2025"),
        (["postgres.sql"], "postgres_copy"),
    ],
)
def test_database_name_for(names: list[str], db: str) -> None:
    assert database_name_for(names) == db


def test_parallel_pg_restore_errors_follow_their_toc_entry_lines() -> None:
    # Two workers: the "creating" lines interleave, but each error comes right after its
    # own worker's "from TOC entry" line.
    stderr = (
        'pg_restore: creating TABLE "public.a"\n'
        'pg_restore: creating FK CONSTRAINT "public.orders orders_customer_fkey"\n'
        "pg_restore: while PROCESSING TOC:\n"
        "pg_restore: from TOC entry 3361; 1259 16410 TABLE pgsodium key supabase_admin\n"
        'pg_restore: error: could not execute query: ERROR:  schema "pgsodium" does not exist\n'
        "Command was: CREATE TABLE pgsodium.key (id uuid);\n"
        "pg_restore: from TOC entry 3400; 2606 16568 FK CONSTRAINT public orders "
        "orders_customer_fkey postgres\n"
        'pg_restore: error: could not execute query: ERROR:  relation "customers" does not '
        "exist\n"
    )
    errors = parse_pg_restore(stderr, "x.dump")
    assert [e.toc_entry for e in errors] == [
        "3361; TABLE pgsodium key",
        "3400; FK CONSTRAINT public orders orders_customer_fkey",
    ]


def test_notice_hints_are_not_glued_to_errors_and_copy_cascades_fold() -> None:
    stderr = (
        'psql:d.sql:10: ERROR:  relation "public.items" does not exist\n'
        "psql:d.sql:11: invalid command \\N\n"
        "psql:d.sql:12: invalid command \\N\n"
        'psql:d.sql:13: ERROR:  syntax error at or near "1"\n'
        "psql:d.sql:14: invalid command \\.\n"
        'psql:d.sql:20: NOTICE:  extension "x" already exists, skipping\n'
        "HINT:  nothing to do\n"
        'psql:d.sql:30: ERROR:  relation "public.other" does not exist\n'
    )
    parser = PsqlParser("d.sql")
    for line in stderr.splitlines():
        parser.feed(line)
    assert [(e.line, e.cascaded) for e in parser.errors] == [(10, 4), (30, 0)]
    assert parser.total == 2
    assert all(e.detail is None for e in parser.errors)
    [group] = parser.groups.values()
    assert (group.template, group.count, group.first_line) == ('relation "…" does not exist', 2, 10)


def test_a_failed_copy_is_named_by_its_cause_in_restricted_mode_too() -> None:
    """psql in \\restrict mode (pg_dump 17.6+) refuses the rows of a failed COPY as
    "backslash commands are restricted": they fold into the COPY's own error."""
    stderr = (
        'psql:d.sql:10: ERROR:  column "key_id" of relation "secrets" does not exist\n'
        "psql:d.sql:12: error: backslash commands are restricted; only \\unrestrict is allowed\n"
        'psql:d.sql:13: ERROR:  syntax error at or near "1"\n'
        "psql:d.sql:14: error: backslash commands are restricted; only \\unrestrict is allowed\n"
    )
    parser = PsqlParser("d.sql")
    for line in stderr.splitlines():
        parser.feed(line)
    assert [(e.line, e.cascaded) for e in parser.errors] == [(10, 3)]
    assert 'column "key_id"' in parser.errors[0].message


def test_groups_count_every_error_past_the_kept_ones() -> None:
    parser = PsqlParser("big.sql")
    for n in range(1, 1841):
        parser.feed(f'psql:big.sql:{n}: ERROR:  relation "t{n}" does not exist')
    assert len(parser.errors) == 1000
    assert parser.total == 1840
    assert [g.count for g in parser.groups.values()] == [1840]


def test_translation_rules_apply_only_between_the_client_and_the_writer() -> None:
    from restorebox.restore.translate import rules_for

    newer = backup("15.8", "17.2")
    assert [r.since for r in rules_for(newer, 15) if r.since] == [17]
    assert [r for r in rules_for(newer, 17) if r.since] == []
    assert [r for r in rules_for(backup("15.8", "15.8"), 15) if r.since] == []
    archive = newer.model_copy(update={"format": "custom"})
    assert rules_for(archive, 15) == []  # pg_restore archives are not translated


def test_hints_name_the_major_a_construct_needs() -> None:
    from restorebox.restore.hints import HintContext, hint_for

    ctx = HintContext("app.sql", data_only_alone=False, major=17)
    hint = hint_for("function uuidv7() does not exist", ctx)
    assert hint is not None
    assert "PostgreSQL 18" in hint
    assert '"postgres": "18"' in hint
    alone = HintContext("data.sql", data_only_alone=True, major=17)
    hint = hint_for('relation "public.orders" does not exist', alone)
    assert hint is not None
    assert "restore the schema first" in hint
    assert hint_for("division by zero", ctx) is None


def test_a_server_lost_mid_restore_is_named_not_internal() -> None:
    """A connection that breaks while restoring (here: nothing listens any more) is a
    stopped container when the engine says so, a restore failure otherwise."""
    import socket
    import threading
    from datetime import timedelta

    from restorebox.errors import ContainerVanished, RestoreFailed
    from restorebox.models import Sandbox, Status, utcnow
    from restorebox.restore.plan import RestorePlan
    from restorebox.restore.runner import RestoreRunner
    from restorebox.runtime import ContainerSpec
    from tests.fakes import FakeRuntime

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime = FakeRuntime()
    container = runtime.start(ContainerSpec("img", "sandbox", {}, {}))
    now = utcnow()
    sandbox = Sandbox(id="s", status=Status.RESTORING, postgres_version=17, image="img",
                      created_at=now, expires_at=now + timedelta(hours=1), port=port,
                      container_id=container.id, password="x")  # fmt: skip

    def runner() -> RestoreRunner:
        return RestoreRunner(runtime, sandbox, timeout_seconds=30, jobs=1,
                             cancelled=threading.Event(), on_progress=lambda _: None,
                             members=lambda *_: [])  # fmt: skip

    with pytest.raises(RestoreFailed, match="closed the connection during the restore"):
        runner().run(RestorePlan(17, (), ()), "stop")
    runtime.kill(container.id)
    with pytest.raises(ContainerVanished, match="stopped during the restore"):
        runner().run(RestorePlan(17, (), ()), "stop")


def test_psql_discards_what_a_dump_prints_without_formatting_it() -> None:
    """A dump's SELECTs may return gigabytes: psql prints unaligned tuples only, straight
    to /dev/null (aligned formatting of 1 GB took 104 s against 13 s)."""
    from restorebox.restore.commands import psql_command

    psql = psql_command("stop", 60)
    psql = psql[psql.index("psql") :]
    assert {"-A", "-t", "-X", "-q"} <= set(psql)
    assert psql[psql.index("-o") + 1] == "/dev/null"
    assert psql[-2:] == ["-f", "-"]  # the service's rewritten SQL, on standard input


def test_an_archive_that_creates_public_keeps_pg_restore_a_plain_file_is_rewritten() -> None:
    """pg_dump before 11 (and a newer one whose source made public again) writes CREATE
    SCHEMA public: an archive keeps pg_restore (the sandbox's empty public is dropped
    first, see the runner); a plain file's statement is made IF NOT EXISTS."""
    from restorebox.backups.model import DeclaredObject
    from restorebox.restore.translate import PUBLIC_SCHEMA, rules_for

    public = DeclaredObject(kind="SCHEMA", namespace="public", name="public")
    old = backup("10.23", "10.23").model_copy(update={"format": "custom", "objects": [public]})
    assert rules_for(old, 17) == []
    plain = old.model_copy(update={"format": "plain", "pg_dump_version": "16.4"})
    assert PUBLIC_SCHEMA in rules_for(plain, 17)


def _rewrite(rules: list[Any], text: str) -> str:
    """Run the rules through the service's rewriter, as the restore pipeline does."""
    from restorebox.sql.rewrite import rewritten

    data = text.encode()
    out = b"".join(rewritten([data[i : i + 7] for i in range(0, len(data), 7)],
                             [rule.rewrite for rule in rules]))  # fmt: skip
    return out.decode()


def test_a_roles_file_passes_over_roles_that_exist_and_platform_grantors() -> None:
    """Issue 18, class 3: CREATE ROLE becomes a create that passes over an existing role;
    GRANTED BY a platform role is dropped (it holds no ADMIN OPTION in a sandbox); the
    same lines keep their numbers."""
    from restorebox.platforms.profiles import SUPABASE
    from restorebox.restore.role_rules import ROLES
    from restorebox.restore.translate import rules_for

    roles = backup(None, None).model_copy(update={"creates_roles": ["postgres", "o'k"]})
    rules = rules_for(roles, 17, SUPABASE)
    assert ROLES in rules
    out = _rewrite(
        rules,
        'CREATE ROLE "postgres";\n'
        'ALTER ROLE "postgres" WITH LOGIN;\n'
        "CREATE ROLE app_reader;\n"
        'GRANT "anon" TO "postgres" WITH ADMIN OPTION, INHERIT TRUE GRANTED BY "supabase_admin";\n'
        'GRANT "anon" TO "app_reader" GRANTED BY "app_owner";\n',
    ).splitlines()
    assert out == [
        'DO $restorebox$ BEGIN CREATE ROLE "postgres"; EXCEPTION WHEN duplicate_object THEN '
        "NULL; END $restorebox$;",
        'ALTER ROLE "postgres" WITH LOGIN;',
        "DO $restorebox$ BEGIN CREATE ROLE app_reader; EXCEPTION WHEN duplicate_object THEN "
        "NULL; END $restorebox$;",
        'GRANT "anon" TO "postgres" WITH ADMIN OPTION, INHERIT TRUE;',
        'GRANT "anon" TO "app_reader";',  # any grantor: the restoring superuser grants
    ]
    # A role the sandbox has already gets the attributes its CREATE would have given.
    assert _rewrite(rules, "create user admin with password '123';\n") == (
        "DO $restorebox$ BEGIN create user admin with password '123'; EXCEPTION WHEN "
        "duplicate_object THEN ALTER ROLE admin WITH LOGIN password '123'; END $restorebox$;\n"
    )
    assert "EXCEPTION WHEN duplicate_object THEN NULL;" in _rewrite(
        rules, "CREATE ROLE r WITH IN ROLE a;\n"
    )


def test_objects_a_stand_in_makes_too_take_the_dumps_definition() -> None:
    """Issue 18, class 1: vault's decrypted view in an older Supabase dump replaces the
    stand-in's; security labels (no provider in a sandbox) become comments, to the end of
    their statement; archives take the same route only for the platform's objects."""
    from restorebox.backups.model import DeclaredObject
    from restorebox.platforms.profiles import SUPABASE
    from restorebox.restore.translate import SECURITY_LABELS, notes_for, rules_for

    view = DeclaredObject(kind="VIEW", namespace="vault", name="decrypted_secrets")
    dump = backup("15.6", "15.6").model_copy(update={"objects": [view], "security_labels": True})
    rules = rules_for(dump, 17, SUPABASE)
    assert SECURITY_LABELS in rules
    out = _rewrite(
        rules,
        'CREATE VIEW "vault"."decrypted_secrets" AS\n SELECT 1;\n'
        "CREATE VIEW vault.other AS\n SELECT 2;\n"
        "SECURITY LABEL FOR pgsodium ON COLUMN vault.secrets.secret IS 'ENCRYPT\nWITH';\n"
        "SELECT 3;\n",
    ).splitlines()
    # The stand-in's view leaves its extension and goes, on the same line as the dump's.
    assert out[0].startswith("DO $restorebox$ ")
    assert "ALTER EXTENSION %I DROP VIEW vault.decrypted_secrets" in out[0]
    assert out[0].endswith('END $restorebox$; CREATE VIEW "vault"."decrypted_secrets" AS')
    assert out[2] == "CREATE VIEW vault.other AS"  # not the platform's
    assert out[4].startswith("/* restorebox: no label provider in a sandbox: SECURITY LABEL")
    assert out[4].endswith("*/")
    assert out[5] == ""  # the label's second line: kept as a line, so numbers still match
    assert out[6] == "SELECT 3;"
    from restorebox.restore.translate import PLAIN_ALWAYS

    # Without a profile: labels, and what every plain file passes through.
    assert rules_for(dump, 17) == [*PLAIN_ALWAYS, SECURITY_LABELS]
    archive = dump.model_copy(update={"format": "custom"})
    assert [r.note for r in rules_for(archive, 17, SUPABASE)] == [
        "view vault.decrypted_secrets is made by the platform's extension too: the dump's "
        "definition replaces the stand-in's"
    ]
    assert rules_for(archive, 17) == []  # pg_restore --no-security-labels instead
    assert SECURITY_LABELS.note in notes_for(archive, 17)


def test_a_set_does_not_premake_roles_an_earlier_file_creates() -> None:
    """The trio's roles file makes "postgres"; the schema after it names it as owner: it
    is the roles file's to make, not restorebox's (a later file's roles still are)."""
    from restorebox.restore.plan import roles_to_create

    roles_file = backup(None, None).model_copy(update={"creates_roles": ["postgres"]})
    schema = backup("15.6", "15.6", roles=["postgres", "anon"])
    assert roles_to_create([roles_file, schema]) == {"anon"}
    assert roles_to_create([schema, roles_file]) == {"anon", "postgres"}


def test_an_extension_the_image_lacks_is_refused_before_any_container() -> None:
    """Issue 18, class 9: TimescaleDB named, with the fix; a platform's extensions and
    images that do not list theirs are not refused; on_error=continue goes on."""
    from restorebox.backups.model import DeclaredObject
    from restorebox.errors import ExtensionUnavailable
    from restorebox.restore.extensions import LABEL, check_extensions

    def needing(*names: str) -> Backup:
        objects = [DeclaredObject(kind="EXTENSION", namespace=n, name=n) for n in names]
        return backup("17.2", "17.2").model_copy(update={"objects": objects})

    labels = {LABEL: "plpgsql,postgis,vector,pg_cron"}
    plan = make_plan([needing("postgis", "timescaledb")], [15, 17], None, 17)
    with pytest.raises(ExtensionUnavailable, match=r"TimescaleDB \(timescaledb\)") as raised:
        check_extensions(plan, "restorebox/postgres:17", labels, "stop")
    assert "RESTOREBOX_IMAGES" in raised.value.message
    assert raised.value.details["extensions"] == ["timescaledb"]
    check_extensions(plan, "postgres:17", {}, "stop")  # the image does not say
    check_extensions(plan, "restorebox/postgres:17", labels, "continue")
    platform = make_plan(
        [needing("pg_stat_monitor").model_copy(update={"roles": ["supabase_admin", "anon"]})],
        [17],
        None,
        17,
        "supabase",
    )
    check_extensions(platform, "restorebox/postgres:17", labels, "stop")


def test_a_server_shut_down_under_a_step_is_not_the_dumps_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stopping engine signals the server before it marks the container stopped: psql
    then reports the server's shutdown, which is waited on (the container is seen stopped
    soon) and never called the dump's error."""
    import threading
    from datetime import timedelta

    from restorebox.errors import ContainerVanished, RestoreFailed
    from restorebox.models import RestoreError, Sandbox, Status, utcnow
    from restorebox.restore import server_loss
    from restorebox.restore.session import Session
    from restorebox.runtime import ContainerSpec
    from tests.fakes import FakeRuntime

    monkeypatch.setattr(server_loss, "STOP_GRACE_SECONDS", 1.5)
    runtime = FakeRuntime()
    container = runtime.start(ContainerSpec("img", "sandbox", {}, {}))
    now = utcnow()
    sandbox = Sandbox(id="s", status=Status.RESTORING, postgres_version=17, image="img",
                      created_at=now, expires_at=now + timedelta(hours=1), port=1,
                      container_id=container.id, password="x")  # fmt: skip
    session = Session(runtime, sandbox, timeout_seconds=30, cancelled=threading.Event())
    shutdown = [RestoreError(backup="b.sql", message="FATAL:  terminating connection due to "
                             "administrator command")]  # fmt: skip
    gone = server_loss.fail_if_container_gone
    gone(session, [RestoreError(backup="b.sql", message="syntax error")])
    with pytest.raises(RestoreFailed, match="shut down during the restore"):
        gone(session, shutdown)  # still running after the grace
    threading.Timer(0.5, lambda: runtime.kill(container.id)).start()
    with pytest.raises(ContainerVanished):
        gone(session, shutdown)
