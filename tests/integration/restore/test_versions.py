"""The version rule on real pg_dump output: files written by a newer pg_dump than the
server they came from, explicit older majors, and 18-only syntax in a file that claims
an older server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO, Api, query

pytestmark = pytest.mark.integration

SEED = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, total numeric);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, 1 + g % 50, g * 2.5 FROM generate_series(1, 200) g;
"""


def pg_dump_18_of(sandbox: dict[str, Any], *args: str) -> bytes:
    """pg_dump 18 (from the 18 image, on the host's network) against a sandbox's port."""
    info = psycopg.conninfo.conninfo_to_dict(sandbox["connection_url"])
    result = subprocess.run(
        [
            "docker", "run", "--rm", "--network", "host",
            "-e", f"PGPASSWORD={info['password']}",
            "restorebox/postgres:18",
            "pg_dump", "-h", "127.0.0.1", "-p", str(info["port"]), "-U", str(info["user"]),
            *args, str(info["dbname"]),
        ],
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.fixture
def source_17(api: Api, backups_dir: Path) -> dict[str, Any]:
    (backups_dir / "seed.sql").write_text(SEED)
    return api.create(backup="seed.sql", postgres="17", probes="none")


@pytest.mark.parametrize(("fmt", "name"), [("p", "by18.sql"), ("c", "by18.dump")])
def test_pg_dump_18_of_a_17_server_restores(
    api: Api, backups_dir: Path, source_17: dict[str, Any], fmt: str, name: str
) -> None:
    (backups_dir / name).write_bytes(pg_dump_18_of(source_17, f"-F{fmt}"))
    described = api.backup(name)
    assert described["pg_dump_version"].startswith("18")
    assert described["source_server_version"].startswith("17")
    chosen = api.create(expect="", backup=name)  # tools as new as the writer: 18
    assert chosen["status"] == "ready", (chosen["error"], chosen["restore"])
    assert chosen["postgres_version"] == "18"
    assert chosen["verdict"] == "pass", chosen["probes"]
    asked = api.create(backup=name, postgres="17")  # honoured: 17's server qualifies
    assert asked["postgres_version"] == "17"
    assert asked["verdict"] == "pass", asked["probes"]
    assert query(asked["connection_url"], "SELECT count(*) FROM orders") == [(200,)]


def test_an_explicit_major_older_than_the_server_is_honoured_with_a_warning(
    api: Api, backups_dir: Path, source_17: dict[str, Any]
) -> None:
    (backups_dir / "from17.sql").write_bytes(pg_dump_18_of(source_17))
    sandbox = api.create(backup="from17.sql", postgres="15")
    assert sandbox["postgres_version"] == "15"
    assert any("older than the server" in w for w in sandbox["restore"]["warnings"])
    assert sandbox["verdict"] == "pass", sandbox["probes"]


def test_18_only_syntax_in_a_file_that_claims_15_gets_18(api: Api, backups_dir: Path) -> None:
    """The file's statements, not only its header, choose the major (issue 27); asked
    for 15, it fails naming the major it needs."""
    (backups_dir / "liar.sql").write_text(
        "--\n-- PostgreSQL database dump\n--\n\n"
        "-- Dumped from database version 15.8\n-- Dumped by pg_dump version 15.8\n\n"
        "CREATE TABLE events (id uuid DEFAULT uuidv7() PRIMARY KEY, at timestamptz);\n"
    )
    sandbox = api.create(backup="liar.sql")
    assert sandbox["postgres_version"] == "18"
    assert any("uses what PostgreSQL 18 brought" in w for w in sandbox["restore"]["warnings"])
    forced = api.create(expect="failed", backup="liar.sql", postgres="15")
    assert forced["error"]["code"] == "restore_failed"
    assert "needs PostgreSQL 18" in forced["error"]["message"]


def test_pgvector_and_locales_of_real_dumps(api: Api, backups_dir: Path) -> None:
    (backups_dir / "embeddings.sql").write_text(
        "-- Dumped from database version 17.5\n-- Dumped by pg_dump version 17.5\n"
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n"
        'CREATE TABLE public.docs (id int PRIMARY KEY, body text COLLATE "en_US.utf8",'
        " embedding public.vector(3));\n"
        "COPY public.docs (id, body, embedding) FROM stdin;\n"
        "1\thello\t[1,2,3]\n2\tworld\t[0.5,0.25,0]\n\\.\n"
        "CREATE INDEX docs_embedding ON public.docs USING hnsw (embedding vector_l2_ops);\n"
    )
    sandbox = api.create(backup="embeddings.sql")
    assert sandbox["verdict"] == "pass", sandbox["probes"]
    nearest = query(
        sandbox["connection_url"], "SELECT id FROM docs ORDER BY embedding <-> '[1,2,2]' LIMIT 1"
    )
    assert nearest == [(1,)]


# A plain dump as pg_dump 10 wrote it: the public schema created explicitly.
PG10_PLAIN = """--
-- PostgreSQL database dump
--

-- Dumped from database version 10.23
-- Dumped by pg_dump version 10.23

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET client_min_messages = warning;
SET row_security = off;

CREATE SCHEMA public;

ALTER SCHEMA public OWNER TO postgres;

COMMENT ON SCHEMA public IS 'standard public schema';

SET default_tablespace = '';

SET default_with_oids = false;

CREATE TABLE public.items (
    id integer NOT NULL,
    name text
);

ALTER TABLE public.items OWNER TO postgres;

COPY public.items (id, name) FROM stdin;
1\tfirst
2\tsecond
\\.

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_pkey PRIMARY KEY (id);
"""


def test_a_tolerated_error_never_ends_the_load(api: Api, backups_dir: Path) -> None:
    """`CREATE SCHEMA public` (pg_dump before 11) fails harmlessly on every newer server;
    restorebox tolerates it, so it must not stop psql or pg_restore either (the sandbox
    used to be ready, empty, and failed)."""
    (backups_dir / "pg10.sql").write_text(PG10_PLAIN)
    sandbox = api.create(backup="pg10.sql")
    assert sandbox["restore"]["errors"] == []
    assert any("CREATE SCHEMA public" in w for w in sandbox["restore"]["warnings"])
    assert query(sandbox["connection_url"], "SELECT count(*) FROM public.items") == [(2,)]
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]


def test_an_extension_the_image_lacks_is_named_never_a_quiet_success(
    api: Api, backups_dir: Path
) -> None:
    """Issue 18, class 9: a TimescaleDB dump is refused before any container (422,
    naming TimescaleDB and the fix); asked to go on regardless, the restore completes
    what it can and the verdict fails, naming the extension."""
    shutil.copyfile(
        REPO / "tests" / "fixtures" / "timescaledb" / "metrics.sql", backups_dir / "metrics.sql"
    )
    response = api.post("/v1/sandboxes", {"backup": "metrics.sql"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "extension_unavailable"
    assert "TimescaleDB (timescaledb)" in body["message"]
    assert "RESTOREBOX_IMAGES" in body["message"]
    assert api.containers() == []
    sandbox = api.create(backup="metrics.sql", on_error="continue")
    assert sandbox["verdict"] == "fail"
    extensions = next(p for p in sandbox["probes"] if p["name"] == "extensions")
    assert extensions["status"] == "fail"
    assert "timescaledb" in extensions["detail"]
