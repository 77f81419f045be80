"""Issue 8: dumps from managed platforms. Supabase-shaped dumps restore with the API's
defaults: the user's tables and rows exact, the verdict `warn` naming only platform gaps
and stand-ins; with the profile turned off, the same dump fails as it would by hand."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Api, exec_in_sandbox, query, row_counts

pytestmark = pytest.mark.integration
SUPABASE = REPO / "tests" / "fixtures" / "supabase"


def statuses(sandbox: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["status"] for p in sandbox["probes"]}


def probe(sandbox: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in sandbox["probes"] if p["name"] == name)


def test_supabase_db_dump_pair_restores_with_defaults(api: Api, backups_dir: Path) -> None:
    for name in ("db_dump_schema.sql", "db_dump_data.sql"):
        shutil.copyfile(SUPABASE / name, backups_dir / name)
    sandbox = api.create(backup=["db_dump_schema.sql", "db_dump_data.sql"])
    platform = sandbox["restore"]["platform"]
    assert platform["profile"] == "supabase"
    assert "roles anon, authenticated, service_role" in platform["evidence"]
    assert {"pg_graphql", "pgsodium", "supabase_vault", "pgjwt"} <= set(platform["stand_ins"])
    assert "auth.uid()" in platform["helpers"]
    url = sandbox["connection_url"]
    counts = row_counts(url, ["public.lines", "public.work_orders"])
    assert counts == {"public.lines": 6, "public.work_orders": 60}
    # Only platform pieces are missing or stood in for: warn, never fail.
    assert sandbox["verdict"] == "warn", [p for p in sandbox["probes"] if p["status"] == "fail"]
    results = statuses(sandbox)
    assert results["restore_errors"] == "warn"
    assert results["row_parity"] == "pass"
    assert results["extensions"] == "warn"
    assert "supabase_realtime" in probe(sandbox, "restore_errors")["detail"] or any(
        "publication" in g for g in platform["gaps"]
    )
    # The foreign key to auth.users could not be made: reported as the platform's gap.
    assert "work_orders_assigned_to_fkey" in " ".join(
        probe(sandbox, "object_parity")["data"]["platform_missing"]
    )
    # The webhook trigger exists and queues its request; nothing is sent.
    with_trigger = query(url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'work_order_webhook'")
    assert with_trigger == [(1,)]
    query(
        url,
        "INSERT INTO work_orders (line_id, title) SELECT id, 'new' FROM lines LIMIT 1 RETURNING id",
    )
    assert query(url, "SELECT count(*) FROM net.http_request_queue") == [(1,)]
    # auth.uid() reads the request's JWT claims like the platform's does.
    claims = '{"sub": "00000000-0000-0000-0000-000000000007", "role": "authenticated"}'
    uid = query(
        url,
        f"SELECT set_config('request.jwt.claims', '{claims}', false), auth.uid()::text, "
        "auth.role()",
    )
    assert uid[0][1:] == ("00000000-0000-0000-0000-000000000007", "authenticated")


def test_with_the_profile_off_the_same_dump_fails_as_it_would_by_hand(
    api: Api, backups_dir: Path
) -> None:
    shutil.copyfile(SUPABASE / "db_dump_schema.sql", backups_dir / "db_dump_schema.sql")
    sandbox = api.create(expect="failed", backup="db_dump_schema.sql", profile="none")
    assert sandbox["error"]["code"] == "restore_failed"
    assert "does not exist" in sandbox["error"]["message"]
    assert sandbox["restore"]["platform"] is None


@pytest.mark.parametrize(("fmt", "name"), [("p", "project_full.sql"), ("c", "project.dump")])
def test_full_pg_dump_of_a_supabase_shaped_project(
    api: Api, backups_dir: Path, fmt: str, name: str
) -> None:
    shutil.copyfile(SUPABASE / "source.sql", backups_dir / "source.sql")
    source = api.create(backup="source.sql", profile="none", probes="none")
    dumped = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", f"-F{fmt}", source["database"])
    (backups_dir / name).write_bytes(dumped)
    sandbox = api.create(backup=name)
    assert sandbox["restore"]["platform"]["profile"] == "supabase"
    tables = [
        "public.profiles", "public.posts", "public.comments", "auth.users",
        "storage.buckets", "realtime.messages_2025_01", "realtime.messages_2025_02",
        "vault.secrets",
    ]  # fmt: skip
    assert row_counts(sandbox["connection_url"], tables) == row_counts(
        source["connection_url"], tables
    )
    assert sandbox["verdict"] == "warn", [p for p in sandbox["probes"] if p["status"] != "pass"]
    not_passing = {k: v for k, v in statuses(sandbox).items() if v != "pass"}
    assert not_passing == {"extensions": "warn"}, not_passing  # stand-ins, and only that
    owner = query(
        sandbox["connection_url"],
        "SELECT evtowner::regrole::text FROM pg_event_trigger"
        " WHERE evtname = 'issue_pg_net_access'",
    )
    assert owner == [("supabase_admin",)]


def test_a_dashboard_style_cluster_dump_of_a_supabase_project(api: Api, backups_dir: Path) -> None:
    """pg_dumpall of the Supabase-shaped project: the platform's roles arrive twice (the
    profile's and the dump's CREATE ROLE), which is the platform's business, not a failure."""
    shutil.copyfile(SUPABASE / "source.sql", backups_dir / "project.sql")
    source = api.create(backup="project.sql", profile="none", probes="none")
    (backups_dir / "cluster.sql").write_bytes(
        exec_in_sandbox(source, "pg_dumpall", "-U", "restorebox")
    )
    sandbox = api.create(backup="cluster.sql")
    assert sandbox["restore"]["platform"]["profile"] == "supabase"
    assert sandbox["database"] == "project"
    tables = ["public.profiles", "public.posts", "public.comments", "auth.users"]
    assert row_counts(sandbox["connection_url"], tables) == row_counts(
        source["connection_url"], tables
    )
    assert sandbox["verdict"] in ("pass", "warn"), [
        p for p in sandbox["probes"] if p["status"] == "fail"
    ]


def test_an_older_supabase_project_with_vault_objects_and_queues(
    api: Api, backups_dir: Path
) -> None:
    """Issue 18, classes 1 and 2: the dump carries vault's decrypted view (made outside
    the extension before supabase_vault 0.3), pgsodium's security label, and pgmq's queue
    tables; plain and custom restore with the defaults, every row there, queues usable."""
    for name in ("source.sql", "older_project.sql"):
        shutil.copyfile(SUPABASE / name, backups_dir / name)
    source = api.create(backup=["source.sql", "older_project.sql"], profile="none", probes="none")
    plain = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", source["database"])
    assert b"CREATE VIEW vault.decrypted_secrets" in plain
    assert b"CREATE TABLE pgmq.q_emails" in plain
    # What such dumps carry and no sandbox can make: pgsodium's label on the secret column.
    label = (
        b"SECURITY LABEL FOR pgsodium ON COLUMN vault.secrets.secret IS "
        b"'ENCRYPT WITH KEY COLUMN key_id ASSOCIATED (id, description) NONCE nonce';\n"
    )
    (backups_dir / "older.sql").write_bytes(plain + b"\n" + label)
    (backups_dir / "older.dump").write_bytes(
        exec_in_sandbox(source, "pg_dump", "-U", "restorebox", "-Fc", source["database"])
    )
    tables = ["vault.secrets", "pgmq.q_emails", "pgmq.a_emails", "public.posts", "auth.users"]
    expected = row_counts(source["connection_url"], tables)
    assert (expected["pgmq.q_emails"], expected["pgmq.a_emails"]) == (24, 1)
    for name in ("older.sql", "older.dump"):
        sandbox = api.create(backup=name)
        url = sandbox["connection_url"]
        assert row_counts(url, tables) == expected, name
        assert sandbox["verdict"] == "warn", [p for p in sandbox["probes"] if p["status"] != "pass"]
        not_passing = {k: v for k, v in statuses(sandbox).items() if v != "pass"}
        assert not_passing == {"extensions": "warn"}, (name, not_passing)
        assert {"pgmq", "supabase_vault"} <= set(sandbox["restore"]["platform"]["stand_ins"])
        warnings = " ".join(sandbox["restore"]["warnings"])
        assert "view vault.decrypted_secrets is made by the platform's extension too" in warnings
        if name == "older.sql":
            assert "SECURITY LABEL statements skipped" in warnings
        # The dump's own view definition is the one in place, and it reads (nothing
        # decrypts in a sandbox: the key never left the platform).
        secrets = query(
            url, "SELECT name, decrypted_secret FROM vault.decrypted_secrets ORDER BY 1"
        )
        assert secrets == [("mail_key", None), ("webhook_key", None)]
        view = query(url, "SELECT pg_get_viewdef('vault.decrypted_secrets'::regclass)")
        assert "crypto_aead_det_decrypt" in view[0][0]
        # Queues work on the restored messages.
        assert query(url, "SELECT queue_name FROM pgmq.list_queues()") == [("emails",)]
        popped = query(url, "SELECT message ->> 'to' FROM pgmq.pop('emails')")
        assert popped == [("user2@example.invalid",)]
        assert query(url, "SELECT count(*) FROM pgmq_public.send('emails', '{}')") == [(1,)]


def test_supabase_documented_backup_trio(api: Api, backups_dir: Path) -> None:
    """Issue 18, class 3: roles.sql (a role-only dump: postgres, the profile's roles and
    grants GRANTED BY supabase_admin), then schema.sql, then data.sql."""
    for name in ("roles.sql", "db_dump_schema.sql", "db_dump_data.sql"):
        shutil.copyfile(SUPABASE / name, backups_dir / name)
    sandbox = api.create(backup=["roles.sql", "db_dump_schema.sql", "db_dump_data.sql"])
    assert sandbox["restore"]["platform"]["profile"] == "supabase"
    url = sandbox["connection_url"]
    assert row_counts(url, ["public.lines", "public.work_orders"]) == {
        "public.lines": 6,
        "public.work_orders": 60,
    }
    assert sandbox["verdict"] == "warn", [p for p in sandbox["probes"] if p["status"] == "fail"]
    assert statuses(sandbox)["row_parity"] == "pass"
    errors = [e["message"] for e in sandbox["restore"]["errors"]]
    assert not [e for e in errors if "role" in e], errors
    # The file's roles, attributes, settings and memberships are all there.
    roles = query(
        url,
        "SELECT rolname, rolcanlogin, rolinherit, rolconfig FROM pg_roles"
        " WHERE rolname IN ('postgres', 'reporting') ORDER BY 1",
    )
    assert roles == [
        ("postgres", True, True, None),
        ("reporting", True, False, ["statement_timeout=30s"]),
    ]
    members = query(
        url,
        "SELECT r.rolname, m.rolname, g.admin_option FROM pg_auth_members g"
        " JOIN pg_roles r ON r.oid = g.roleid JOIN pg_roles m ON m.oid = g.member"
        " WHERE m.rolname IN ('postgres', 'reporting') ORDER BY 1, 2",
    )
    assert members == [
        ("anon", "postgres", True),
        ("authenticated", "postgres", True),
        ("authenticated", "reporting", False),
    ]
