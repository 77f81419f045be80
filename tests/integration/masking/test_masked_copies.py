"""Issue 21: masked copies. A dump of our own with realistic people in it is restored and
masked; what remains is checked from the dump itself (not from the report): no original
value of a masked column anywhere, in SQL or in the data directory's files; keys still
join, uniques hold; two restores mask alike; copies of a masked snapshot are masked;
strict mode, leaks, PostgreSQL Anonymizer labels, and bad policies refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GENERATED, TOKEN, Api, query
from tests.fixtures.people.generate import generate

pytestmark = pytest.mark.integration

POLICY = {
    "tables": {
        "public.customers": {
            "email": "email",
            "full_name": "name",
            "phone": "phone",
            "street": "address",
            "city": "city",
            "birth_date": "shift_date:180",
            "notes": "text",
        },
        "public.tickets": {"body": "text"},
        "public.newsletter": {"address": "email"},
        "public.audit_log": {"actor_email": "email"},
        "public.staff": {"username": "hash", "first_name": "first_name", "last_name": "last_name"},
    },
}
# What each masked column held, by the table's column order in the fixture.
MASKED = {
    "customers": {"email": 1, "full_name": 2, "phone": 3, "street": 4, "city": 5, "notes": 8},
    "tickets": {"body": 3},
    "newsletter": {"address": 1},
    "audit_log_early": {"actor_email": 2},
    "audit_log_late": {"actor_email": 2},
    "staff": {"username": 1, "first_name": 2, "last_name": 3},
}
TEXT_VALUES = """
SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND a.attnum > 0 AND NOT a.attisdropped
"""


@pytest.fixture(scope="module")
def people() -> dict[str, list[list[object]]]:
    return generate(GENERATED / "people")


@pytest.fixture
def backups(backups_dir: Path, people: Any) -> Path:
    for name in ("people.sql", "people_labelled.sql"):
        shutil.copyfile(GENERATED / "people" / name, backups_dir / name)
    (backups_dir / "masking.json").write_text(json.dumps(POLICY))
    return backups_dir


def originals(people: dict[str, list[list[object]]], tables: dict[str, dict[str, int]]) -> set[str]:
    return {
        str(row[index])
        for table, columns in tables.items()
        for row in people[table]
        for index in columns.values()
        if row[index] is not None
    }


def every_value(url: str) -> list[str]:
    """Every value of every column of every table and materialized view, as text."""
    values: list[str] = []
    for (column,) in query(url, TEXT_VALUES):
        schema, table, name = column.split(".")
        rows = query(url, f"SELECT {name}::text FROM {schema}.{table} WHERE {name} IS NOT NULL")
        values += [r[0] for r in rows]
    return values


def test_a_masked_sandbox_holds_no_original_value_and_still_joins(
    api: Api, backups: Path, people: dict[str, list[list[object]]]
) -> None:
    sandbox = api.create(backup="people.sql", masking="masking.json")
    url = sandbox["connection_url"]
    secrets = originals(people, MASKED)
    values = every_value(url)
    assert values, "the masked database is empty"
    assert not secrets & set(values), "original values remain after masking"
    emails = {str(row[1]) for row in people["customers"]}
    text = "\n".join(values)
    assert not [e for e in emails if e in text], "an original e-mail remains inside a value"

    # Nothing in the files either (old row versions, WAL, statistics): searched for the
    # e-mails, which are distinctive.
    sample = sorted(emails)[:200]
    found = subprocess.run(
        ["docker", "exec", "-i", "-u", "postgres", f"restorebox-{sandbox['id']}", "sh", "-c",
         'cd "$PGDATA" && grep -rlaF -f - . || true'],
        input="\n".join(sample).encode(), capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    assert found == "", f"original e-mails in the data directory's files: {found}"

    # Keys still join, uniques hold, nothing lost.
    counts = query(
        url,
        "SELECT (SELECT count(*) FROM orders o JOIN customers c ON c.email = o.customer_email"
        "        AND c.id = o.customer_id),"
        " (SELECT count(*) FROM tickets t JOIN customers c ON c.email = t.customer_email),"
        " (SELECT count(DISTINCT email) FROM customers), (SELECT count(*) FROM customers),"
        " (SELECT count(DISTINCT username) FROM staff)",
    )[0]
    assert counts == (len(people["orders"]), len(people["tickets"]), 1500, 1500, 40)
    # Newsletter addresses are customers' addresses: still the same people's.
    [(joined,)] = query(
        url, "SELECT count(*) FROM newsletter n JOIN customers c ON c.email = n.address"
    )
    assert joined == len(people["newsletter"])
    # So are the audit log's actors (a partitioned table: masked in place, then rewritten).
    [(actors,)] = query(
        url, "SELECT count(*) FROM audit_log a JOIN customers c ON c.email = a.actor_email"
    )
    assert actors == len(people["audit_log_early"]) + len(people["audit_log_late"])

    # Dates move within the bound, each row by its own amount; NULLs stay NULL.
    shifted = dict(query(url, "SELECT id, birth_date FROM customers"))
    moves = set()
    for row in people["customers"]:
        before, after = row[6], shifted[row[0]]
        assert (before is None) == (after is None)
        if isinstance(before, date) and after is not None:
            assert abs((after - before).days) <= 180
            moves.add((after - before).days)
    assert len(moves) > 50
    # Shapes kept: lengths of varchar(120) respected, phones keep their digits' count.
    [(longest,)] = query(url, "SELECT max(length(full_name)) FROM customers")
    assert longest <= 120

    masking = sandbox["masking"]
    assert masking["source"] == "file masking.json"
    by_column = {(c["table"], c["column"]): c for c in masking["columns"]}
    assert by_column[("public.orders", "customer_email")]["via"].startswith("foreign key")
    assert by_column[("public.customers", "email")]["rows"] == 1500
    assert masking["leaks"] == []
    [probe] = [p for p in sandbox["probes"] if p["name"] == "masking_leaks"]
    assert probe["status"] == "pass", probe
    assert sandbox["verdict"] == "pass", [p for p in sandbox["probes"] if p["status"] != "pass"]
    # The matview was refreshed from the masked rows.
    cities = {r[0] for r in query(url, "SELECT city FROM customer_cities")}
    assert cities
    assert not cities & {str(r[5]) for r in people["customers"]}


def test_two_restores_of_one_backup_mask_alike(api: Api, backups: Path) -> None:
    first = api.create(backup="people.sql", masking=POLICY)
    second = api.create(backup="people.sql", masking=POLICY, fresh=True)
    assert not second["from_snapshot"]
    sql = "SELECT id, email, full_name, phone, street, notes FROM customers ORDER BY id"
    assert query(first["connection_url"], sql) == query(second["connection_url"], sql)
    key = api.settings.state_dir / "masking.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_copy_of_a_masked_snapshot_is_masked_and_never_an_unmasked_one(
    make_api: Any, backups: Path, people: dict[str, list[list[object]]]
) -> None:
    with make_api(snapshot_max_bytes=10 * 1024**3) as api:
        masked = api.create(backup="people.sql", masking="masking.json")
        copy = api.create(backup="people.sql", masking="masking.json")
        assert copy["from_snapshot"]
        assert copy["snapshot_id"] == masked["snapshot_id"]
        assert copy["masking"]["columns"] == masked["masking"]["columns"]
        emails = {str(row[1]) for row in people["customers"]}
        copied = {r[0] for r in query(copy["connection_url"], "SELECT email FROM customers")}
        assert copied
        assert not copied & emails

        plain = api.create(backup="people.sql", masking="none")
        assert not plain["from_snapshot"]
        assert plain["snapshot_id"] != masked["snapshot_id"]
        assert plain["masking"] is None
        kept = {r[0] for r in query(plain["connection_url"], "SELECT email FROM customers")}
        assert kept == emails
        listed = {s["id"]: s for s in api.get("/v1/snapshots").json()["snapshots"]}
        assert listed[masked["snapshot_id"]]["masked"] is True
        assert listed[plain["snapshot_id"]]["masked"] is False
        # Asking a masked snapshot's copy for a policy of its own is refused, not ignored.
        refused = api.post("/v1/sandboxes", {"snapshot": masked["snapshot_id"], "masking": "none"})
        assert refused.status_code == 422, refused.text


def test_strict_fails_on_a_column_nobody_classified(api: Api, backups: Path) -> None:
    forgetful = {"tables": dict(POLICY["tables"]), "strict": True}
    del forgetful["tables"]["public.newsletter"]
    sandbox = api.create(backup="people.sql", masking=forgetful, expect="failed")
    assert sandbox["error"]["code"] == "masking_incomplete"
    assert "public.newsletter.address" in sandbox["error"]["message"]
    found = {(c["table"], c["column"]) for c in sandbox["masking"]["suspicious"]}
    assert ("public.newsletter", "address") in found
    assert api.containers() == []


def test_a_forgotten_copy_of_masked_values_fails_the_verdict(api: Api, backups: Path) -> None:
    forgetful = {"tables": dict(POLICY["tables"])}
    del forgetful["tables"]["public.newsletter"]
    sandbox = api.create(backup="people.sql", masking=forgetful, keep_snapshot=False)
    assert sandbox["verdict"] == "fail"
    [probe] = [p for p in sandbox["probes"] if p["name"] == "masking_leaks"]
    assert probe["status"] == "fail"
    assert "public.newsletter.address" in probe["detail"]
    leaks = sandbox["masking"]["leaks"]
    assert {"table": "public.newsletter", "column": "address", "where": "column"}.items() <= leaks[
        0
    ].items()
    assert any(leak["where"] == "file" for leak in leaks)  # its heap file holds them too
    suspicious = {(s["table"], s["column"]) for s in sandbox["masking"]["suspicious"]}
    assert ("public.newsletter", "address") in suspicious


def test_anon_labels_in_the_dump_are_honoured_by_default(
    api: Api, backups: Path, people: dict[str, list[list[object]]]
) -> None:
    sandbox = api.create(backup="people_labelled.sql")
    masking = sandbox["masking"]
    assert masking["source"] == "anon labels"
    strategies = {c["column"]: (c["strategy"], c["via"]) for c in masking["columns"]}
    assert strategies["username"] == ("hash", "anon label")
    assert strategies["first_name"] == ("first_name", "anon label")
    assert strategies["hired_on"] == ("shift_date:30", "anon label")
    assert [n for n in masking["labels_not_understood"] if "tickets.body" in n]
    url = sandbox["connection_url"]
    staff = originals(people, {"staff": MASKED["staff"]})
    assert not staff & set(every_value(url))
    # The labels restore without the anon extension, and the verdict holds.
    failing = [(p["name"], p["detail"]) for p in sandbox["probes"] if p["status"] == "fail"]
    assert not failing

    off = api.create(backup="people_labelled.sql", masking="none", keep_snapshot=False)
    assert off["masking"] is None
    assert any("masking is off" in w for w in off["restore"]["warnings"])
    names = {r[0] for r in query(off["connection_url"], "SELECT username FROM staff")}
    assert names == {str(r[1]) for r in people["staff"]}


def test_bad_policies_are_refused_before_any_container(api: Api, backups: Path) -> None:
    api.backup("people.sql")  # described, so the create checks it at once
    bad = {
        "tables": {
            "public.nobody": {"x": "email"},
            "public.customers": {"emial": "email", "phone": "telephone", "city": "shift_date:x"},
        }
    }
    response = api.post("/v1/sandboxes", {"backup": "people.sql", "masking": bad})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "masking_policy_invalid"
    for name in ("public.nobody", "customers.emial", "telephone", "shift_date"):
        assert name in body["message"], name
    for masking, words in [
        ("../etc/passwd", "backups folder"),
        ("missing.yaml", "no masking policy file"),
        ({"tables": [], "strict": "maybe"}, "not a masking policy"),
    ]:
        response = api.post("/v1/sandboxes", {"backup": "people.sql", "masking": masking})
        assert response.status_code == 422, response.text
        assert words in response.json()["message"]
    assert api.containers() == []


def test_a_masking_that_fails_removes_the_sandbox_even_when_asked_to_keep_it(
    api: Api, backups: Path
) -> None:
    # NOT NULL cannot be masked with null: found in the restored database, after the
    # restore; the unmasked sandbox must not stay.
    policy = {"tables": {"public.customers": {"email": "null"}}}
    sandbox = api.create(backup="people.sql", masking=policy, keep_on_failure=True, expect="failed")
    assert sandbox["error"]["code"] == "masking_failed"
    assert "NOT NULL" in sandbox["error"]["message"]
    assert api.containers() == []


def test_the_dashboard_shows_what_masking_did(
    live_server: Any, backups: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    forgetful = {"tables": dict(POLICY["tables"])}
    del forgetful["tables"]["public.newsletter"]
    with live_server() as server, server.client() as http:
        made = http.post(
            "/v1/sandboxes",
            json={
                "backup": "people.sql",
                "masking": forgetful,
                "wait": True,
                "keep_snapshot": False,
            },
        ).json()
        assert made["status"] == "ready", made
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/ui#token={TOKEN}")
        page.goto(f"{server.url}/ui#/sandboxes/{made['id']}")
        expect(page.locator("#masking-summary")).to_contain_text("request")
        expect(page.locator("#masked-columns tbody tr")).to_have_count(
            len(made["masking"]["columns"])
        )
        expect(page.locator("#masked-columns")).to_contain_text(
            "foreign key with public.customers.email"
        )
        expect(page.locator("#suspicious-columns")).to_contain_text("public.newsletter")
        expect(page.locator("#masking-leaks")).to_contain_text("public.newsletter.address")
        assert errors == []
