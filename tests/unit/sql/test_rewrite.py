"""Statement rewrites: they change the statements they are for, spelled any way pg_dump
(or a person) spells them, and not one byte anywhere else: not in a literal, a body, a
comment, COPY data, nor in another statement."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restorebox.restore.role_rules import ROLES, guard_roles
from restorebox.restore.translate import CLEAN, SECURITY_LABELS
from restorebox.sql.rewrite import Rewrite, rewritten
from tests.unit.sql.test_lexer import hostile_statement

GUARD = guard_roles(["restorebox", "restorebox_bootstrap"])
REWRITES: list[Rewrite] = [GUARD.rewrite, CLEAN.rewrite, ROLES.rewrite, SECURITY_LABELS.rewrite]


def run(text: str, rewrites: list[Rewrite] = REWRITES, size: int = 5) -> str:
    data = text.encode("latin-1")
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(rewritten(chunks, rewrites)).decode("latin-1")


def test_clean_drops_become_if_exists_where_pg_dump_puts_it() -> None:
    cases = {
        "DROP TABLE public.t;": "DROP TABLE IF EXISTS public.t;",
        'DROP TABLE "Odd Name";': 'DROP TABLE IF EXISTS "Odd Name";',
        "DROP USER MAPPING FOR app SERVER s;": "DROP USER MAPPING IF EXISTS FOR app SERVER s;",
        "DROP CAST (text AS public.x);": "DROP CAST IF EXISTS (text AS public.x);",
        "DROP TRANSFORM FOR public.t LANGUAGE plpython3u;": (
            "DROP TRANSFORM IF EXISTS FOR public.t LANGUAGE plpython3u;"
        ),
        "DROP TEXT SEARCH CONFIGURATION public.c;": (
            "DROP TEXT SEARCH CONFIGURATION IF EXISTS public.c;"
        ),
        "DROP OPERATOR CLASS public.c USING btree;": (
            "DROP OPERATOR CLASS IF EXISTS public.c USING btree;"
        ),
        "DROP EVENT TRIGGER e;": "DROP EVENT TRIGGER IF EXISTS e;",
        "DROP FOREIGN DATA WRAPPER w;": "DROP FOREIGN DATA WRAPPER IF EXISTS w;",
        "DROP TABLE IF EXISTS public.t;": "DROP TABLE IF EXISTS public.t;",
        "ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;": (
            "ALTER TABLE IF EXISTS ONLY public.t DROP CONSTRAINT IF EXISTS t_pkey;"
        ),
        "ALTER TABLE public.t ALTER COLUMN id DROP DEFAULT;": (
            "ALTER TABLE IF EXISTS public.t ALTER COLUMN id DROP DEFAULT;"
        ),
        "ALTER TABLE public.t ADD COLUMN c int;": "ALTER TABLE public.t ADD COLUMN c int;",
    }
    for before, after in cases.items():
        assert run(before + "\n") == after + "\n", before


def test_literals_bodies_and_copy_data_are_never_rewritten() -> None:
    text = (
        "INSERT INTO public.t VALUES (1, '\nDROP TABLE tmp;\n');\n"
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n"
        "DROP TABLE tmp;\nEND $$;\n"
        "-- DROP TABLE commented;\n"
        "COPY public.t (a) FROM stdin;\nDROP TABLE tmp;\nALTER ROLE restorebox NOSUPERUSER;\n\\.\n"
    )
    assert run(text) == text


def test_the_sandbox_superuser_is_guarded_however_it_is_spelled() -> None:
    for statement in (
        "ALTER ROLE restorebox NOSUPERUSER;",
        "ALTER  ROLE restorebox NOSUPERUSER;",
        "alter role RESTOREBOX with nosuperuser;",
        'ALTER ROLE "restorebox" RENAME TO x;',
        "ALTER USER\n  restorebox_bootstrap NOLOGIN;",
        "ALTER ROLE CURRENT_USER NOSUPERUSER;",
        "DROP ROLE restorebox;",
        "CREATE ROLE restorebox;",
    ):
        out = run(statement + "\n")
        assert out.startswith("/* restorebox: the sandbox's own superuser"), statement
        assert out.count("\n") == statement.count("\n") + 1
    assert run("DROP ROLE IF EXISTS app, restorebox, ro;\n") == "DROP ROLE IF EXISTS app, ro;\n"
    assert run('ALTER ROLE "Restorebox" NOLOGIN;\n') == 'ALTER ROLE "Restorebox" NOLOGIN;\n'


def test_a_skipped_statement_keeps_its_lines_and_what_follows_on_its_line() -> None:
    text = "SECURITY LABEL FOR anon ON COLUMN t.c IS 'MASKED\nWITH VALUE NULL'; SELECT 2;\n"
    out = run(text)
    assert out.count("\n") == text.count("\n")
    assert out.endswith("*/\n SELECT 2;\n")  # the next statement on the line survives


@st.composite
def dump_with_targets(draw: st.DrawFn) -> tuple[str, str]:
    """A dump of hostile statements, COPY blocks and --clean drops: (input, expected)."""
    source: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        choice = draw(st.sampled_from(["hostile", "drop", "copy", "guard"]))
        if choice == "hostile":
            text = draw(hostile_statement()).decode()
            source.append(text)
            expected.append(text)
        elif choice == "drop":
            name = draw(st.sampled_from(["t", '"x;y"', "public.t", '"DROP TABLE"']))
            source.append(f"DROP TABLE {name};")
            expected.append(f"DROP TABLE IF EXISTS {name};")
        elif choice == "copy":
            rows = draw(st.lists(st.sampled_from(["DROP TABLE t;", "a\tb", "'", "$$", "/*"])))
            block = "COPY t (a) FROM stdin;\n" + "".join(r + "\n" for r in rows) + "\\."
            source.append(block)
            expected.append(block)
        else:
            source.append("ALTER ROLE restorebox NOSUPERUSER;")
            expected.append("/* restorebox: the sandbox's own superuser is left as it is: "
                            "ALTER ROLE restorebox NOSUPERUSER; */")  # fmt: skip
    return "\n".join(source) + "\n", "\n".join(expected) + "\n"


@settings(max_examples=300, deadline=None)
@given(dump_with_targets(), st.integers(1, 50))
def test_no_byte_outside_the_rewritten_statements_changes(case: tuple[str, str], size: int) -> None:
    source, expected = case
    assert run(source, size=size) == expected


def test_what_real_dumps_carry_that_a_sandbox_cannot_run_as_it_is() -> None:
    from restorebox.restore.translate import (
        ENCODED_DATABASES,
        GRANTED_BY,
        PLPGSQL,
        PUBLIC_SCHEMA,
        TABLESPACES,
    )
    from restorebox.restore.translate import (
        GEN_RANDOM_UUID as UUID,
    )

    rules = [r.rewrite for r in (GRANTED_BY, TABLESPACES, ENCODED_DATABASES, PLPGSQL, UUID)]
    cases = {
        "GRANT app TO bob GRANTED BY rdsadmin;": "GRANT app TO bob;",
        'GRANT SELECT ON t TO "x" GRANTED BY "Owner";': 'GRANT SELECT ON t TO "x";',
        "SET default_tablespace = tbs_lab;": "SET default_tablespace = '';",
        "SET default_tablespace = '';": "SET default_tablespace = '';",
        "CREATE DATABASE lab WITH TEMPLATE = template0 ENCODING = 'UTF8' TABLESPACE = tbs;": (
            "CREATE DATABASE lab WITH TEMPLATE = template0 ENCODING = 'UTF8';"
        ),
        "CREATE DATABASE wifidog WITH ENCODING = 'LATIN1';": (
            "CREATE DATABASE wifidog WITH ENCODING = 'LATIN1' LOCALE 'C' TEMPLATE template0;"
        ),
        "CREATE DATABASE d ENCODING 'UTF8';": "CREATE DATABASE d ENCODING 'UTF8';",
        "CREATE DATABASE d ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';": (
            "CREATE DATABASE d ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';"
        ),
        "CREATE EXTENSION plpgsql;": "CREATE EXTENSION IF NOT EXISTS plpgsql;",
        "CREATE PROCEDURAL LANGUAGE plpgsql;": "CREATE OR REPLACE PROCEDURAL LANGUAGE plpgsql;",
        "CREATE EXTENSION postgis;": "CREATE EXTENSION postgis;",
        "CREATE TABLE t (id uuid DEFAULT public.gen_random_uuid() NOT NULL);": (
            "CREATE TABLE t (id uuid DEFAULT pg_catalog.gen_random_uuid() NOT NULL);"
        ),
        "CREATE TABLE u (c text DEFAULT 'x.gen_random_uuid()');": (
            "CREATE TABLE u (c text DEFAULT 'x.gen_random_uuid()');"
        ),
    }
    for before, after in cases.items():
        assert run(before + "\n", rules) == after + "\n", before
    skipped = run("CREATE TABLESPACE t OWNER u LOCATION '/var/lib/x';\n", rules)
    assert skipped.startswith("/* restorebox: no tablespaces in a sandbox")
    assert run('CREATE SCHEMA "public";\n', [PUBLIC_SCHEMA.rewrite]) == (
        'CREATE SCHEMA IF NOT EXISTS "public";\n'
    )


def test_the_report_names_only_the_rules_that_changed_something() -> None:
    from restorebox.restore.rule import Applied
    from restorebox.restore.translate import PLAIN_ALWAYS

    applied = Applied(list(PLAIN_ALWAYS))
    run("GRANT a TO b GRANTED BY c;\nGRANT a TO d GRANTED BY c;\nSELECT 1;\n", applied.rewrites())
    assert applied.notes() == [PLAIN_ALWAYS[0].note + " (2 statements)"]
