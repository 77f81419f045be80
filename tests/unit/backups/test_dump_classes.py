"""Issue 27: what the survey of real dumps found, read from plain files of our own in the
shapes those dumps have (old pg_dump, hand-written scripts, platforms' CLIs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorebox.backups import Catalog
from restorebox.platforms.detect import detect

# pg_dump before 10.3: unqualified names after SET search_path; a lower-case CREATE USER
# of a hand-edited header; a script that \connects to a database another script makes.
OLD_STYLE = b"""--
-- PostgreSQL database dump
--

-- Dumped from database version 9.4.6
-- Dumped by pg_dump version 9.4.6

SET client_encoding = 'LATIN1';
create user admin with password '123';
\\connect sisdb

CREATE SCHEMA sis;
SET search_path = sis, pg_catalog;
CREATE TABLE t_curso (codigo integer NOT NULL, nombre text);
ALTER TABLE sis.t_curso OWNER TO admin;
CREATE SEQUENCE s_curso START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
COPY t_curso (codigo, nombre) FROM stdin;
1\tespa\xf1ol
2\tfran\xe7ais
\\.
SELECT pg_catalog.setval('s_curso', 2, true);
SET search_path = public, pg_catalog;
CREATE TABLE notas (id integer);
ALTER DEFAULT PRIVILEGES FOR ROLE admin IN SCHEMA sis GRANT ALL ON TABLES TO lector;
"""


def test_old_style_names_follow_search_path_and_the_encoding(tmp_path: Path) -> None:
    (tmp_path / "old.sql").write_bytes(OLD_STYLE)
    backup = Catalog(tmp_path).get("old.sql")
    assert backup.encoding == "LATIN1"
    assert backup.data_tables == ["sis.t_curso"]
    assert backup.row_counts == {"sis.t_curso": 2}
    tables = {(o.namespace, o.name) for o in backup.objects if o.kind == "TABLE"}
    assert tables == {("sis", "t_curso"), ("public", "notas")}
    assert backup.sequence_values == {"sis.s_curso": (2, True)}
    assert backup.creates_roles == ["admin"]
    assert "lector" in backup.roles  # a grantee of default privileges
    assert backup.connects_without_create == ["sisdb"]
    assert backup.columns["sis.t_curso"] == ["codigo", "nombre"]


def test_heroku_is_told_by_the_schema_its_extensions_live_in(tmp_path: Path) -> None:
    dump = b"""-- Dumped by pg_dump version 15.1
CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA heroku_ext;
CREATE TABLE public.t (id integer);
ALTER TABLE public.t OWNER TO u1abcdefghijkl;
"""
    (tmp_path / "heroku.sql").write_bytes(dump)
    profile, evidence = detect([Catalog(tmp_path).get("heroku.sql")])
    assert profile is not None
    assert profile.name == "heroku"
    assert evidence == ["schema heroku_ext"]


def test_a_file_that_uses_newer_syntax_than_its_header_says_gets_that_major(
    tmp_path: Path,
) -> None:
    from restorebox.restore.plan import choose_major

    dump = b"""-- Dumped from database version 15beta2
-- Dumped by pg_dump version 15beta2
CREATE TABLE public.t (id uuid DEFAULT uuidv7() NOT NULL);
CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$ SELECT 'JSON_TABLE(' $$;
"""
    (tmp_path / "lies.sql").write_bytes(dump)
    backup = Catalog(tmp_path).get("lies.sql")
    assert backup.needs == ["uuidv7()"]  # a literal in a body is not its syntax
    major, warnings = choose_major([backup], [15, 17, 18], None, 18)
    assert major == 18
    assert "uses what PostgreSQL 18 brought (uuidv7())" in warnings[0]


def test_an_archive_turned_to_crlf_is_refused_naming_the_damage(tmp_path: Path) -> None:
    from restorebox.errors import UnsupportedBackup

    damaged = b"PGDMP\x01\x0e\x00\x04\x08\x01" + b"\x01\x00\x00\x00\r\n\xff\xff\xff\x7f" * 64
    (tmp_path / "app.dump").write_bytes(damaged)
    with pytest.raises(UnsupportedBackup, match="newlines were turned into CRLF"):
        Catalog(tmp_path).get("app.dump")


def test_a_copy_whose_rows_and_end_were_cut_out_is_refused(tmp_path: Path) -> None:
    from restorebox.errors import UnsupportedBackup

    dump = b"""-- Dumped by pg_dump version 9.1.4
CREATE TABLE account (id integer);
CREATE TABLE player (id integer);
COPY account (id) FROM stdin;


--
-- Data for Name: player; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY player (id) FROM stdin;


--
-- PostgreSQL database dump complete
--
"""
    (tmp_path / "cut.sql").write_bytes(dump)
    with pytest.raises(UnsupportedBackup, match=r"COPY public\.account never ends"):
        Catalog(tmp_path).get("cut.sql")
    # A file cut short in its last COPY is not that: it is described (and restored).
    (tmp_path / "short.sql").write_bytes(b"CREATE TABLE t (id int);\nCOPY t (id) FROM stdin;\n1\n2")
    assert Catalog(tmp_path).get("short.sql").row_counts == {"public.t": 2}
