"""The SQL lexer: units join back to their input byte for byte whatever the chunking, and
statements end where psql ends them (never inside a literal, a body, a comment, COPY
data or parentheses)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restorebox.sql.lexer import COPY, GAP, META, STATEMENT, Statement, Unit, units

DUMP = b"""--
-- PostgreSQL database dump
--
\\restrict abc123
SET standard_conforming_strings = on;
SET client_encoding = 'LATIN1';
CREATE FUNCTION public.f() RETURNS integer LANGUAGE plpgsql AS $body$
BEGIN
CREATE TABLE IF NOT EXISTS inner_table (a int); -- a ; in a body
SECURITY LABEL FOR anon ON COLUMN public.t.c IS 'MASKED WITH VALUE NULL';
RETURN 1;
END $body$;
CREATE FUNCTION public.g() RETURNS integer LANGUAGE sql
BEGIN ATOMIC
 SELECT 1;
 SELECT CASE WHEN true THEN 2 END;
END;
/* a /* nested ; */ comment */
INSERT INTO public.t VALUES ('a;b', E'it\\'s;', 'x''y', $$;$$, "we;ird", $1, a$b);
INSERT INTO public.t VALUES ('
DROP TABLE tmp;
');
COPY public.t (a, b) FROM stdin;
1\tDROP TABLE x;
\\.
COPY public.empty (a) FROM stdin;
\\.
\\connect other
CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO u VALUES (1); INSERT INTO v VALUES (2));
SET standard_conforming_strings = off;
INSERT INTO t VALUES ('back\\'slash;');
SET standard_conforming_strings = on;
trailing statement without a semicolon"""


def lex(data: bytes, size: int = 1 << 20) -> list[Unit]:
    return list(units([data[i : i + size] for i in range(0, len(data), size)]))


def statements(data: bytes) -> list[bytes]:
    return [u.data for u in lex(data) if u.kind == STATEMENT]


def test_units_join_to_the_input_and_do_not_depend_on_chunking() -> None:
    whole = lex(DUMP)
    assert b"".join(u.data for u in whole) == DUMP
    for size in (1, 2, 3, 5, 64):
        assert lex(DUMP, size) == whole


def test_statements_end_where_psql_ends_them() -> None:
    found = statements(DUMP)
    assert found[0] == b"SET standard_conforming_strings = on;"
    assert found[2].startswith(b"CREATE FUNCTION public.f()")
    assert found[2].endswith(b"END $body$;")
    assert found[3].endswith(b"END;")  # BEGIN ATOMIC ... END holds its own ";"
    assert found[4].endswith(b'"we;ird", $1, a$b);')
    assert found[5] == b"INSERT INTO public.t VALUES ('\nDROP TABLE tmp;\n');"
    assert found[-5].startswith(b"CREATE RULE")
    assert found[-5].endswith(b"(2));")
    assert found[-3] == b"INSERT INTO t VALUES ('back\\'slash;');"  # not standard
    assert found[-1] == b"trailing statement without a semicolon"


def test_copy_data_meta_commands_and_gaps() -> None:
    found = lex(DUMP)
    copies = [u for u in found if u.kind == COPY]
    assert [c.data for c in copies] == [b"1\tDROP TABLE x;\n\\.\n", b"\\.\n"]
    assert all(c.last for c in copies)
    metas = [u.data for u in found if u.kind == META]
    assert metas == [b"\\restrict abc123\n", b"\\connect other\n"]
    gaps = [u for u in found if u.kind == GAP]
    assert gaps[0].data.startswith(b"--\n-- PostgreSQL database dump")
    copy_statement = next(u for u in found if u.data.startswith(b"COPY public.t"))
    assert copy_statement.data.endswith(b"FROM stdin;\n")  # its line's end goes with it


def test_lines_are_counted_from_one() -> None:
    found = lex(DUMP)
    first = next(u for u in found if u.kind == STATEMENT)
    assert first.line == 5
    copy = next(u for u in found if u.kind == COPY)
    assert DUMP.split(b"\n")[copy.line - 1] == b"1\tDROP TABLE x;"


def test_code_hides_literals_bodies_and_comments() -> None:
    function = Statement(lex(DUMP)[6])  # CREATE FUNCTION public.f()
    assert function.data.startswith(b"CREATE FUNCTION public.f()")
    assert "inner_table" not in function.code
    assert "SECURITY LABEL" not in function.code
    assert len(function.code) == len(function.text)
    assert [line.split()[0] for line in function.code_lines()] == ["CREATE"]
    insert = Statement(
        next(u for u in lex(DUMP) if u.data.startswith(b"INSERT INTO public.t VALUES ('\n"))
    )
    assert "DROP" not in insert.code
    assert list(insert.code_lines()) == ["INSERT INTO public.t VALUES ('\n"]


def test_a_large_copy_block_streams_in_pieces() -> None:
    rows = b"".join(b"%d\tsome text\n" % i for i in range(600_000))
    data = b"COPY t (a, b) FROM stdin;\n" + rows + b"\\.\nSELECT 1;\n"
    found = lex(data, 1 << 16)
    pieces = [u for u in found if u.kind == COPY]
    assert len(pieces) > 1
    assert pieces[-1].last
    assert not pieces[0].last
    assert b"".join(p.data for p in pieces) == rows + b"\\.\n"
    assert sum(p.data.count(b"\n") for p in pieces) - 1 == 600_000
    assert found[-2].data == b"SELECT 1;"


def test_a_copy_block_cut_short_ends_with_the_input() -> None:
    found = lex(b"COPY t (a) FROM stdin;\n1\n2")
    assert found[-1].kind == COPY
    assert found[-1].last
    assert found[-1].data == b"1\n2"


# Hostile literals and bodies: whatever they hold, they stay inside their statement.
_TEXT = st.text(alphabet=st.sampled_from(list("ab ;'\"$\\-/*()\nEe")), max_size=30)


@st.composite
def hostile_statement(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["string", "escape", "dollar", "ident", "comment", "block"]))
    body = draw(_TEXT)
    if kind == "string":
        literal = "'" + body.replace("'", "''") + "'"
    elif kind == "escape":
        literal = "E'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"
    elif kind == "dollar":
        tag = draw(st.sampled_from(["$$", "$x$", "$body_1$"]))
        literal = tag + body.replace("$", "") + tag
    elif kind == "ident":
        literal = '"' + body.replace('"', '""') + '"'
    elif kind == "comment":
        literal = "-- " + body.replace("\n", " ") + "\n"
    else:
        literal = "/* " + body.replace("*", "") + " */"
    return f"SELECT {literal} AS x;".encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_statement(), min_size=1, max_size=6), st.integers(1, 40))
def test_hostile_literals_never_split_a_statement(parts: list[bytes], size: int) -> None:
    data = b"\n".join(parts) + b"\n"
    found = [u for u in lex(data, size) if u.kind == STATEMENT]
    assert [u.data for u in found] == parts
    assert b"".join(u.data for u in lex(data, size)) == data
