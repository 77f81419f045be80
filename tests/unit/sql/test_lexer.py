"""The SQL lexer: units join back to their input byte for byte whatever the chunking, and
statements end where psql ends them (never inside a literal, a body, a comment, COPY
data or parentheses)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restorebox.sql.lexer import (
    COPY,
    GAP,
    INSERTS,
    META,
    STATEMENT,
    Statement,
    Unit,
    inserts_in,
    units,
)

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
    """Every statement, those of a run of INSERTs one by one."""
    found: list[bytes] = []
    for unit in lex(data):
        if unit.kind == INSERTS:
            found += [u.data for u in inserts_in(unit)]
        elif unit.kind == STATEMENT:
            found.append(unit.data)
    return found


def shape(found: list[Unit]) -> list[tuple[str, bytes, int]]:
    """What a chunking must not change: every statement (runs of INSERTs one by one),
    meta-command and COPY block, with its line. (How gaps and COPY data are cut into
    units, and how many INSERTs a run holds, follow the chunks.)"""
    out: list[tuple[str, bytes, int]] = []
    for unit in found:
        if unit.kind == INSERTS:
            out += [(STATEMENT, u.data, u.line) for u in inserts_in(unit)]
        elif unit.kind == COPY and out and out[-1][0] == COPY and not out[-1][1].endswith(b"\\.\n"):
            out[-1] = (COPY, out[-1][1] + unit.data, out[-1][2])
        elif unit.kind != GAP:
            out.append((unit.kind, unit.data, unit.line))
    return out


def test_units_join_to_the_input_and_do_not_depend_on_chunking() -> None:
    whole = lex(DUMP)
    assert b"".join(u.data for u in whole) == DUMP
    for size in (1, 2, 3, 5, 64):
        chunked = lex(DUMP, size)
        assert b"".join(u.data for u in chunked) == DUMP
        assert shape(chunked) == shape(whole)


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
    [run] = [u for u in lex(DUMP) if u.data.startswith(b"INSERT INTO public.t VALUES ('\n")]
    assert run.kind == INSERTS
    [only] = inserts_in(run)
    insert = Statement(only)
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
    assert statements(data) == parts
    assert shape(lex(data, size)) == shape(lex(data))
    assert b"".join(u.data for u in lex(data, size)) == data


def test_a_run_of_inserts_is_one_unit_and_splits_back_exactly() -> None:
    rows = b"".join(b"INSERT INTO t VALUES (%d, 'a;b', 'it''s', \"q\");\n" % i for i in range(5000))
    data = b"SET x = 1;\n" + rows + b"INSERT INTO t VALUES (E'esc\\'aped');\nSELECT 1;\n"
    found = lex(data, 1 << 12)
    runs = [u for u in found if u.kind == INSERTS]
    assert len(runs) < 100  # a chunk of INSERTs at a time, not 5000 units
    assert b"".join(u.data for u in found) == data
    found_statements = [(d, line) for kind, d, line in shape(found) if kind == STATEMENT]
    inserts = found_statements[1:-2]
    assert [d for d, _ in inserts] == [line for line in rows.split(b"\n") if line]
    assert [line for _, line in inserts] == list(range(2, 5002))
    # The E'' string is not a simple one: that INSERT is lexed on its own.
    assert any(u.kind == STATEMENT and u.data.startswith(b"INSERT INTO t VALUES (E") for u in found)
