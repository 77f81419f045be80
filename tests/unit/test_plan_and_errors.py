from __future__ import annotations

from pathlib import Path

import pytest

from restorebox.backups.model import Backup, major_of
from restorebox.errors import InvalidRequest, NoSuitablePostgres
from restorebox.restore.errors_parse import parse_pg_restore, parse_psql
from restorebox.restore.plan import make_plan
from restorebox.sandboxes import database_name_for


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


def test_plan_refuses_what_cannot_work() -> None:
    with pytest.raises(NoSuitablePostgres, match="needs PostgreSQL 17"):
        make_plan([backup("15", "17.0")], [15, 17], 15, 17)
    with pytest.raises(NoSuitablePostgres):
        make_plan([backup("18.0", "18.0")], [15, 17], None, 17)
    with pytest.raises(InvalidRequest, match="not configured"):
        make_plan([], [15, 17], 16, 17)


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
    assert errors[0].message == 'ERROR:  relation "t" already exists'
    assert errors[0].statement is not None
    assert errors[0].statement.startswith("CREATE TABLE public.t (")
    assert "Key (a)=(1)" in errors[1].message


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
