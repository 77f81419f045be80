"""What each strategy is in SQL: one expression per masked column, evaluated by the
sandbox's server over the whole table in one statement.

Every output is drawn from ``HMAC-SHA256(key, original)``, computed with the server's own
``sha256()`` (no extension needed): the key's two padded halves arrive as the query's
parameters ``ik`` and ``ok``, never in the query text or in any object. Strategies that
use the hash more than once do it in a small helper function (schema ``HELPERS``, made
for the masking and dropped after it), which is handed the hash once."""

from __future__ import annotations

import random
from dataclasses import dataclass

from psycopg import sql

from restorebox.masking.strategies import Strategy
from restorebox.masking.words import CITIES, FIRST_NAMES, LAST_NAMES, LOREM, STREETS

HELPERS = "restorebox_masking"
TEXT_TYPES = {"text", "character varying", "character", "citext", "name"}
INTEGER_TYPES = {"smallint", "integer", "bigint"}
DATE_TYPES = {"date", "timestamp without time zone", "timestamp with time zone"}
STRATEGY_TYPES: dict[str, set[str]] = {
    "hash": TEXT_TYPES | INTEGER_TYPES | {"uuid"},
    "shift_date": DATE_TYPES,
}
PARAGRAPHS = 32
PARAGRAPH_CHARS = 640


def _array(items: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def _paragraphs() -> list[str]:
    """Lorem paragraphs in a fixed pseudo-random order: ``text`` cuts one to length."""
    rng = random.Random(20261130)  # filler words in a fixed order, not a secret
    out = []
    for _ in range(PARAGRAPHS):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < PARAGRAPH_CHARS:
            words.append(rng.choice(LOREM))
        out.append(" ".join(words).capitalize())
    return out


def _pick(array: str, byte: int) -> str:
    """An element chosen by two bytes of ``h``, naming ``h`` once (so that a SQL function
    using it is inlined: the hash is not computed twice)."""
    index = f"('x' || encode(substring(h from {byte + 1} for 2), 'hex'))::bit(16)::int"
    return f"({array})[1 + {index} % cardinality({array})]"


def helper_functions() -> str:
    """The helper schema's definition (run in the sandbox before masking)."""
    first, last = _array(FIRST_NAMES), _array(LAST_NAMES)
    cities, streets = _array(CITIES), _array(STREETS)
    paragraphs = _array(_paragraphs())
    fn = f"CREATE FUNCTION {HELPERS}"
    # Not STRICT: a strict SQL function whose body is not (CASE) is never inlined. Each
    # gives NULL for a NULL hash all the same.
    tail = "LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    return f"""
CREATE SCHEMA {HELPERS};
{fn}.first_name(h bytea) RETURNS text {tail} AS $$ SELECT {_pick(first, 0)} $$;
{fn}.last_name(h bytea) RETURNS text {tail} AS $$ SELECT {_pick(last, 2)} $$;
{fn}.city(h bytea) RETURNS text {tail} AS $$ SELECT {_pick(cities, 4)} $$;
{fn}.full_name(h bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN RETURN {_pick(first, 0)} || ' ' || {_pick(last, 2)}; END $$;
{fn}.address(h bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  RETURN (1 + (get_byte(h, 6) * 256 + get_byte(h, 7)) % 9899)::text || ' ' || {_pick(streets, 8)};
END $$;
{fn}.phone(h bytea, original text) RETURNS text {tail} AS $$
SELECT CASE WHEN left(ltrim(original), 1) = '+' THEN '+' ELSE '' END
    || right(lpad((('x' || encode(substring(h from 1 for 8), 'hex'))::bit(64)::bigint
                   & 9223372036854775807)::text, 18, '0'),
             least(18, length(original) - length(translate(original, '0123456789', ''))))
$$;
{fn}.text(h bytea, original text) RETURNS text {tail} AS $$
SELECT CASE WHEN original = '' THEN original ELSE left(
  repeat({_pick(paragraphs, 10)} || ' ',
         1 + ((length(original) + 7) / 8 * 8) / {PARAGRAPH_CHARS}),
  (length(original) + 7) / 8 * 8) END
$$;
"""


@dataclass(frozen=True)
class Column:
    """A column to mask, as the sandbox's catalog has it."""

    table: sql.Composable  # qualified, quoted
    name: str
    type: str  # format_type without the modifier: "character varying"
    declared: str  # format_type with it: "character varying(80)", "public.citext"
    max_length: int | None  # varchar(n) / char(n)
    unique: bool  # a single-column unique index covers it
    row_key: sql.Composable | None  # the row's primary key as text (shift_date)


def hmac(value: sql.Composable) -> sql.Composable:
    """HMAC-SHA256(key, value::text), NULL for NULL."""
    return sql.SQL("sha256(%(ok)s || sha256(%(ik)s || convert_to(({})::text, 'UTF8')))").format(
        value
    )


def expression(column: Column, strategy: Strategy) -> sql.Composable:
    """The value the column is set to."""
    kind = strategy.kind
    allowed = STRATEGY_TYPES.get(kind, TEXT_TYPES if kind not in ("null", "fixed") else None)
    if allowed is not None and column.type not in allowed:
        raise ValueError(
            f"strategy {kind} does not apply to a column of type {column.type} "
            f"(it takes {', '.join(sorted(allowed))})"
        )
    c = sql.Identifier(column.name)
    h = hmac(c)
    helper = sql.Identifier(HELPERS)
    if kind == "email":
        out: sql.Composable = sql.SQL(
            "'user.' || encode(substring({} from 1 for 8), 'hex') || '@example.com'"
        ).format(h)
    elif kind in ("name", "first_name", "last_name", "city", "address"):
        function = "full_name" if kind == "name" else kind
        out = sql.SQL("{}.{}({})").format(helper, sql.Identifier(function), h)
    elif kind in ("phone", "text"):
        out = sql.SQL("{}.{}({}, ({})::text)").format(helper, sql.Identifier(kind), h, c)
    elif kind == "hash":
        out = _hash(column, h)
    elif kind == "null":
        return sql.NULL
    elif kind == "fixed":
        return sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {}::{} END").format(
            c, sql.Literal(strategy.argument or ""), sql.SQL(column.declared)
        )
    elif kind == "shift_date":
        return _shift(column, strategy.days)
    elif kind == "partial":
        n = sql.Literal(strategy.keep_last)
        out = sql.SQL(
            "CASE WHEN length({c}) <= {n} THEN repeat('*', length({c}))"
            " ELSE repeat('*', length({c}) - {n}) || right({c}, {n}) END"
        ).format(c=c, n=n)
    else:
        raise ValueError(f"strategy {kind} changes nothing")
    if column.unique and kind in ("name", "first_name", "last_name", "address", "city", "text"):
        out = sql.SQL("{} || ' ' || encode(substring({} from 17 for 6), 'hex')").format(out, h)
    if column.max_length is not None and column.type in TEXT_TYPES:
        out = sql.SQL("left({}, {})").format(out, sql.Literal(column.max_length))
    return out


def _hash(column: Column, h: sql.Composable) -> sql.Composable:
    if column.type == "uuid":
        return sql.SQL("encode(substring({} from 1 for 16), 'hex')::uuid").format(h)
    if column.type in INTEGER_TYPES:
        bits = {"smallint": 15, "integer": 31, "bigint": 63}[column.type]
        return sql.SQL(
            "(('x' || encode(substring({} from 1 for 8), 'hex'))::bit(64)::bigint & {})::{}"
        ).format(h, sql.Literal((1 << bits) - 1), sql.SQL(column.type))
    return sql.SQL("encode(substring({} from 1 for 16), 'hex')").format(h)


def _shift(column: Column, days: int) -> sql.Composable:
    """A shift of -days..+days from the row's key (every shift_date column of a row moves
    together, so intervals within a row hold), or from the value when there is no key."""
    c = sql.Identifier(column.name)
    h = hmac(column.row_key if column.row_key is not None else c)
    offset = sql.SQL(
        "((('x' || encode(substring({} from 1 for 4), 'hex'))::bit(32)::bigint %% {}) - {})"
    ).format(h, sql.Literal(2 * days + 1), sql.Literal(days))
    if column.type == "date":
        return sql.SQL("{} + {}::int").format(c, offset)
    return sql.SQL("{} + {} * interval '1 day'").format(c, offset)
