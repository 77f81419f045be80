"""Issue 8: files that make their own databases (pg_dumpall cluster dumps, pg_dump
--create) restore as they intend: every database, \\connect honoured, the maintenance
database safe, the sandbox handing out the database that holds the data, probes on each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import THIRD_PARTY, Api, exec_in_sandbox, execute, query, row_counts

pytestmark = pytest.mark.integration

TWO_DATABASES = """--
-- PostgreSQL database cluster dump (hand-written, in pg_dumpall's shape)
--

CREATE ROLE app_owner;
ALTER ROLE app_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN;
CREATE ROLE postgres;
ALTER ROLE postgres WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN;

\\connect template1

CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'en_US.UTF-8';
ALTER DATABASE shop OWNER TO app_owner;

\\connect shop

CREATE TABLE public.products (id integer PRIMARY KEY, name text NOT NULL);
ALTER TABLE public.products OWNER TO app_owner;
CREATE TABLE public.orders (id integer PRIMARY KEY, product_id integer REFERENCES public.products);
COPY public.products (id, name) FROM stdin;
1	chair
2	table
3	lamp
\\.
COPY public.orders (id, product_id) FROM stdin;
10	1
11	1
12	3
13	2
\\.

CREATE DATABASE analytics WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'de_DE.UTF-8';

\\connect analytics

CREATE TABLE public.events (id integer PRIMARY KEY, kind text);
COPY public.events (id, kind) FROM stdin;
1	view
2	click
\\.
"""


def test_a_cluster_dump_restores_every_database(api: Api, backups_dir: Path) -> None:
    (backups_dir / "cluster.sql").write_text(TWO_DATABASES)
    described = api.backup("cluster.sql")
    assert any("shop, analytics" in w for w in described["warnings"])
    sandbox = api.create(backup="cluster.sql")
    assert sandbox["database"] == "shop"  # the database holding the data
    assert sandbox["restore"]["databases"] == ["shop", "analytics"]
    assert sandbox["connection_url"].endswith("/shop")
    assert row_counts(sandbox["connection_url"], ["public.products", "public.orders"]) == {
        "public.products": 3,
        "public.orders": 4,
    }
    analytics = sandbox["connection_url"].rsplit("/", 1)[0] + "/analytics"
    assert query(analytics, "SELECT count(*) FROM events") == [(2,)]
    # The dump may create and demote "postgres": the image's bootstrap user is another.
    assert query(
        sandbox["connection_url"], "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'"
    ) == [(False,)]
    # A locale the image lacks becomes the closest it has, reported.
    assert any("de_DE.UTF-8" in w for w in sandbox["restore"]["warnings"])
    # Probes ran on both databases, and both pass.
    names = {p["name"]: p["status"] for p in sandbox["probes"]}
    assert names["row_parity"] == names["row_parity [analytics]"] == "pass"
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]
    other = api.create(backup="cluster.sql", database="analytics")
    assert other["connection_url"].endswith("/analytics")
    response = api.post("/v1/sandboxes", {"backup": "cluster.sql", "database": "nope"})
    assert response.status_code == 422


@pytest.mark.parametrize("clean", [False, True])
def test_pg_dumpall_of_a_sandbox_round_trips(api: Api, backups_dir: Path, clean: bool) -> None:
    (backups_dir / "cluster.sql").write_text(TWO_DATABASES)
    source = api.create(backup="cluster.sql", probes="none")
    if clean:
        # A cluster initialised in en_US.utf8 (Debian's default): pg_dumpall --clean then
        # drops and recreates template1 and postgres in that locale (issue 18, class 6).
        for name in ("template1", "postgres"):
            for statement in (  # one at a time: DROP DATABASE takes no transaction
                f"UPDATE pg_database SET datistemplate = false WHERE datname = '{name}'",
                f"DROP DATABASE {name} WITH (FORCE)",
                f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'en_US.utf8'"
                f" IS_TEMPLATE {str(name == 'template1').lower()}",
            ):
                execute(source["connection_url"], statement)
    args = ["pg_dumpall", "-U", "restorebox"] + (["--clean"] if clean else [])
    (backups_dir / "all.sql").write_bytes(exec_in_sandbox(source, *args))
    sandbox = api.create(expect="", backup="all.sql")
    assert sandbox["status"] == "ready", (sandbox["error"], sandbox["restore"]["errors"][:3])
    assert sandbox["database"] == "shop"
    assert set(sandbox["restore"]["databases"]) == {"shop", "analytics", "postgres"} - {
        "postgres"
    } or (set(sandbox["restore"]["databases"]) >= {"shop", "analytics"})
    assert row_counts(sandbox["connection_url"], ["public.orders"]) == {"public.orders": 4}
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]
    # The maintenance and template databases were never dropped: the server still has them.
    maintenance = query(
        sandbox["connection_url"],
        "SELECT datname FROM pg_database WHERE datname IN ('postgres', 'template1') ORDER BY 1",
    )
    assert maintenance == [("postgres",), ("template1",)]


def test_a_create_dump_hands_out_its_database(api: Api, backups_dir: Path) -> None:
    (backups_dir / "cluster.sql").write_text(TWO_DATABASES)
    source = api.create(backup="cluster.sql", probes="none")
    created = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", "--create", "shop")
    (backups_dir / "shop_create.sql").write_bytes(created)
    sandbox = api.create(backup="shop_create.sql")
    assert sandbox["database"] == "shop"
    assert sandbox["restore"]["databases"] == ["shop"]
    assert row_counts(sandbox["connection_url"], ["public.orders"]) == {"public.orders": 4}
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]


def test_a_clean_dump_without_if_exists_restores_into_a_fresh_sandbox(
    api: Api, backups_dir: Path
) -> None:
    """`pg_dump --clean` (a common habit) without `--if-exists` starts by dropping
    constraints, defaults and tables a fresh sandbox does not have yet."""
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir / "nw.sql")
    source = api.create(backup="nw.sql", probes="none")
    execute(
        source["connection_url"],
        "CREATE SEQUENCE note_ids; CREATE TABLE notes (id int DEFAULT nextval('note_ids')"
        " PRIMARY KEY, order_id smallint REFERENCES orders, body text);"
        " CREATE INDEX notes_body ON notes (body); INSERT INTO notes (order_id, body)"
        " SELECT order_id, 'n' FROM orders LIMIT 10;"
        " CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RETURN NEW; END$$;"
        " CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();"
        " CREATE VIEW recent AS SELECT * FROM orders ORDER BY order_date DESC LIMIT 5;",
    )
    database = source["database"]
    clean = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", "--clean", database)
    assert b"IF EXISTS" not in clean
    assert b"ALTER TABLE ONLY public.notes DROP CONSTRAINT" in clean
    (backups_dir / "clean.sql").write_bytes(clean)
    sandbox = api.create(expect="", backup="clean.sql")
    assert sandbox["status"] == "ready", (sandbox["error"], sandbox["restore"]["errors"][:3])
    assert sandbox["restore"]["errors"] == []
    assert row_counts(sandbox["connection_url"], ["public.orders", "public.notes"]) == {
        "public.orders": 830,
        "public.notes": 10,
    }
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]
