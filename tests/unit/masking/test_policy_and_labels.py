"""Masking policies, strategies, PostgreSQL Anonymizer labels, the key, the PII
detectors and redaction, without a database (the integration tests mask real ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorebox.backups.archive import ArchiveToc, TocEntry
from restorebox.backups.columns import ColumnScan, scan_toc
from restorebox.backups.model import AnonLabel, Backup, DeclaredObject
from restorebox.errors import MaskingPolicyInvalid
from restorebox.masking.key import MaskingKey, load_key
from restorebox.masking.labels import strategy_for
from restorebox.masking.policy import resolve
from restorebox.masking.redact import redacted
from restorebox.masking.scan import is_card, is_iban, is_person, is_phone, reasons_for
from restorebox.masking.search import distinctive
from restorebox.masking.strategies import Strategy, parse_strategy
from restorebox.models import RestoreError, RestoreReport


def backup(labels: list[AnonLabel] | None = None) -> Backup:
    return Backup(
        name="shop.sql",
        format="plain",
        compression="none",
        content="complete",
        size_bytes=1,
        sha256="0" * 64,
        path=Path("/nowhere/shop.sql"),
        objects=[DeclaredObject(kind="TABLE", namespace="public", name="customers")],
        columns={"public.customers": ["id", "email", "phone", "born"]},
        anon_labels=labels or [],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email", Strategy("email")),
        ("fixed:N/A: none", Strategy("fixed", "N/A: none")),
        ("fixed:", Strategy("fixed", "")),
        ("shift_date:30", Strategy("shift_date", "30")),
        ("partial:4", Strategy("partial", "4")),
        ("keep", Strategy("keep")),
    ],
)
def test_strategies_parse(text: str, expected: Strategy) -> None:
    assert parse_strategy(text) == expected
    assert str(parse_strategy(text)) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("telephone", "unknown strategy"),
        ("email:x", "takes no argument"),
        ("fixed", "needs an argument"),
        ("shift_date:0", "whole number"),
        ("shift_date:ten", "whole number"),
        ("partial:1000", "1 to 100"),
    ],
)
def test_bad_strategies_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_strategy(text)


@pytest.mark.parametrize(
    ("label", "strategy"),
    [
        ("MASKED WITH FUNCTION anon.fake_email()", "email"),
        ("MASKED WITH FUNCTION anon.fake_first_name()", "first_name"),
        ("MASKED WITH FUNCTION anon.dummy_last_name()", "last_name"),
        ("MASKED WITH FUNCTION anon.pseudo_email(email)", "email"),
        ("MASKED WITH FUNCTION anon.fake_city()", "city"),
        ("MASKED WITH FUNCTION anon.random_phone('0033')", "phone"),
        ("MASKED WITH FUNCTION anon.partial(phone, 2, $$******$$, 2)", "partial:2"),
        ("MASKED WITH FUNCTION anon.hash(username)", "hash"),
        ("MASKED WITH FUNCTION anon.dnoise(born, '2 weeks'::interval)", "shift_date:14"),
        ("MASKED WITH FUNCTION anon.dnoise(born, interval '1 year')", "shift_date:365"),
        ("MASKED WITH FUNCTION anon.lorem_ipsum(words := 20)", "text"),
        ("MASKED WITH VALUE 'CONFIDENTIAL' ", "fixed:CONFIDENTIAL"),
        ("MASKED WITH VALUE NULL", "null"),
        ("NOT MASKED", "keep"),
    ],
)
def test_anon_labels_map_onto_strategies(label: str, strategy: str) -> None:
    found = strategy_for(label)
    assert found is not None
    assert str(found) == strategy


@pytest.mark.parametrize(
    "label",
    ["MASKED WITH FUNCTION anon.random_zip()", "MASKED WITH FUNCTION anon.noise(salary, 0.1)", "x"],
)
def test_labels_not_understood_are_none(label: str) -> None:
    assert strategy_for(label) is None


def test_a_plain_dump_tells_its_columns_and_labels() -> None:
    scan = ColumnScan()
    lines = [
        "CREATE TABLE public.customers (",
        "    id integer NOT NULL,",
        '    "E-mail" text,',
        "    CONSTRAINT positive CHECK ((id > 0))",
        ");",
        'SECURITY LABEL FOR anon ON COLUMN public.customers."E-mail" IS '
        "'MASKED WITH VALUE ''gone''';",
        "SECURITY LABEL FOR pgsodium ON COLUMN public.customers.id IS 'ENCRYPT WITH KEY ID x';",
        "COPY public.orders (id, note) FROM stdin;",
        "INSERT INTO shop.items (id, name) VALUES (1, 'x');",
    ]
    for line in lines:
        scan.feed(line + "\n")
    assert scan.columns == {
        "public.customers": ["id", "E-mail"],
        "public.orders": ["id", "note"],
        "shop.items": ["id", "name"],
    }
    [label] = scan.labels  # only anon's
    assert (label.table, label.column, label.label) == (
        "public.customers",
        "E-mail",
        "MASKED WITH VALUE 'gone'",
    )


def test_an_archive_tells_its_columns_and_labels_from_its_toc() -> None:
    def entry(desc: str, defn: str | None = None, copy: str | None = None) -> TocEntry:
        return TocEntry(1, True, "t", desc, "public", None, defn, copy)

    toc = ArchiveToc((1, 14, 0), "custom", "none", "shop", "15.8", "15.8")
    toc.entries = [
        entry("TABLE", "CREATE TABLE public.t (\n    a integer,\n    b text\n);\n"),
        entry("TABLE DATA", copy="COPY public.t (a, b, c) FROM stdin;\n"),
        entry(
            "SECURITY LABEL",
            "SECURITY LABEL FOR anon ON COLUMN public.t.b IS "
            "'MASKED WITH FUNCTION anon.fake_email()';\n",
        ),
    ]
    scan = scan_toc(toc)
    assert scan.columns == {"public.t": ["a", "b", "c"]}
    assert [(x.column, x.label) for x in scan.labels] == [
        ("b", "MASKED WITH FUNCTION anon.fake_email()")
    ]


def test_a_policy_joins_the_request_to_the_dumps_labels(tmp_path: Path) -> None:
    labels = [
        AnonLabel(table="public.customers", column="email", label="MASKED WITH VALUE NULL"),
        AnonLabel(table="public.customers", column="born", label="MASKED WITH FUNCTION x()"),
    ]
    requested = {"tables": {"customers": {"email": "email", "phone": "partial:2"}}}
    policy, warnings = resolve(requested, [backup(labels)], tmp_path)
    assert policy is not None
    assert policy.tables == {"public.customers": {"email": "email", "phone": "partial:2"}}
    assert policy.source == "request + anon labels"
    assert policy.from_labels == []  # the request's strategy won for email
    assert policy.labels_not_understood == ["public.customers.born: MASKED WITH FUNCTION x()"]
    assert "not understood" in warnings[0]


def test_labels_alone_mask_by_default_and_none_turns_them_off(tmp_path: Path) -> None:
    labels = [AnonLabel(table="public.customers", column="email", label="MASKED WITH VALUE NULL")]
    policy, _ = resolve(None, [backup(labels)], tmp_path)
    assert policy is not None
    assert policy.tables == {"public.customers": {"email": "null"}}
    assert policy.from_labels == ["public.customers.email"]
    off, warnings = resolve("none", [backup(labels)], tmp_path)
    assert off is None
    assert "masking is off" in warnings[0]
    assert resolve(None, [backup()], tmp_path) == (None, [])


def test_a_policy_file_is_read_from_the_backups_folder_only(tmp_path: Path) -> None:
    (tmp_path / "mask.yaml").write_text(
        "strict: true\ntables:\n  public.customers:\n    email: email\n"
    )
    policy, _ = resolve("mask.yaml", [backup()], tmp_path)
    assert policy is not None
    assert (policy.strict, policy.source) == (True, "file mask.yaml")
    (tmp_path / "broken.yaml").write_text("tables: [")
    for name, says in [
        ("broken.yaml", "does not parse"),
        ("gone.yaml", "no masking policy file"),
        ("../mask.yaml", "backups folder"),
        ("mask.txt", "backups folder"),
    ]:
        with pytest.raises(MaskingPolicyInvalid, match=says):
            resolve(name, [backup()], tmp_path)


def test_every_problem_of_a_policy_is_named_at_once(tmp_path: Path) -> None:
    requested = {
        "tables": {
            "public.nobody": {"a": "email"},
            "public.customers": {"emial": "email", "phone": "telephone"},
        }
    }
    with pytest.raises(MaskingPolicyInvalid) as caught:
        resolve(requested, [backup()], tmp_path)
    problems = caught.value.details["problems"]
    assert len(problems) == 3
    assert any("public.nobody" in p for p in problems)
    assert any("emial" in p for p in problems)
    assert any("telephone" in p for p in problems)
    with pytest.raises(MaskingPolicyInvalid, match="stict: Extra inputs"):
        resolve({"tables": {}, "stict": True}, [backup()], tmp_path)


def test_the_key_is_made_once_private_and_stable(tmp_path: Path) -> None:
    first = load_key("", tmp_path)
    assert (tmp_path / "masking.key").stat().st_mode & 0o777 == 0o600
    assert load_key("", tmp_path) == first
    configured = load_key("a configured key", tmp_path)
    assert configured != first
    assert configured == MaskingKey.of(b"a configured key")
    assert len(first.inner) == len(first.outer) == 64
    assert first.fingerprint not in (tmp_path / "masking.key").read_text()


@pytest.mark.parametrize(
    ("value", "check", "expected"),
    [
        ("4539 1488 0343 6467", is_card, True),
        ("4539 1488 0343 6468", is_card, False),  # Luhn fails
        ("GB82 WEST 1234 5698 7654 32", is_iban, True),
        ("GB82 WEST 1234 5698 7654 33", is_iban, False),
        ("+1 (415) 555-0134", is_phone, True),
        ("20240101", is_phone, False),
        ("Mary Johnson", is_person, True),
        ("Blue Widget", is_person, False),
    ],
)
def test_detectors(value: str, check: object, expected: bool) -> None:
    assert callable(check)
    assert check(value) is expected


def test_a_column_is_suspicious_by_its_name_or_its_values() -> None:
    assert reasons_for("contact_email", []) == ["its name"]
    emails = [f"user{i}@shop.test" for i in range(10)] + ["n/a"]
    assert reasons_for("c7", emails) == ["10 of 11 sampled values are e-mail addresses"]
    assert reasons_for("status", ["open", "closed", "open"]) == []
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert reasons_for("session", [jwt] * 5) == ["5 of 5 sampled values are JWTs"]
    assert (
        "IP addresses"
        in reasons_for("seen_from", ["10.0.0.1", "2001:db8::1", "192.168.1.20", "x"])[0]
    )


def test_only_distinctive_values_are_searched_for_in_files() -> None:
    assert distinctive("ann@shop.test")
    assert distinctive("+1 (415) 555-0134")
    assert not distinctive("Thamor")  # a name is also part of other text
    assert not distinctive("a@b")


def test_a_masked_report_does_not_quote_values() -> None:
    report = RestoreReport(
        errors=[
            RestoreError(
                backup="shop.sql",
                message='duplicate key value violates unique constraint "c_email_key"',
                detail="Key (email)=(ann@shop.test) already exists.",
                statement="INSERT INTO c VALUES ('ann@shop.test')",
            )
        ]
    )
    clean = redacted(report)
    assert clean.errors[0].detail == "Key (email)=(…) already exists."
    assert clean.errors[0].statement is None
    assert report.errors[0].statement is not None  # the original is untouched
