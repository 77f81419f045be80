"""Issue 19: drills of a real series. Successive pg_dump backups of a growing database
pass; a backup that lost a table's rows and a function, and a "complete" backup that
holds only the schema, are named with their codes; no drill leaves a sandbox behind."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.conftest import CLI, TOKEN, Api, Manufacturing, exec_in_sandbox, execute
from tests.integration.api.test_observability import Receiver, _metrics

pytestmark = pytest.mark.integration

SHOP = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric);
CREATE FUNCTION order_total(int) RETURNS numeric LANGUAGE sql AS
    $$ SELECT sum(total) FROM orders WHERE customer_id = $1 $$;
CREATE INDEX orders_customer_idx ON orders (customer_id);
INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 200) g;
INSERT INTO orders (customer_id, total) SELECT 1 + g % 200, g FROM generate_series(1, 1000) g;
"""


def drill(api: Api, series: str) -> dict[str, Any]:
    response = api.post(f"/v1/series/{series}/drills")
    assert response.status_code == 202, response.text
    drill_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while True:
        done = api.get(f"/v1/drills/{drill_id}").json()
        if done["status"] == "done":
            return dict(done)
        assert time.monotonic() < deadline, done
        time.sleep(0.5)


def serious(found: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(f["code"], f["object"]) for f in found["findings"] if f["severity"] != "info"]


def test_a_series_of_backups_drilled_one_after_another(api: Api, backups_dir: Path) -> None:
    (backups_dir / "seed.sql").write_text(SHOP)
    source = api.create(backup="seed.sql", probes="none")
    url, database = source["connection_url"], source["database"]

    def dump(name: str, *args: str) -> None:
        (backups_dir / name).write_bytes(
            exec_in_sandbox(source, "pg_dump", "-U", "restorebox", *args, database)
        )

    dump("shop_complete_backup_20250901_020000.sql")
    first = drill(api, "shop_complete_backup")
    assert first["verdict"] == "pass", first["findings"]
    assert first["baseline"] is None
    assert first["facts"]["rows"]["public.orders"] == 1000

    # A day of normal growth: more rows, a new index. Passes, compared with the first.
    execute(
        url, "INSERT INTO orders (customer_id, total) SELECT 1, g FROM generate_series(1, 30) g"
    )
    execute(url, "CREATE INDEX orders_total_idx ON orders (total)")
    dump("shop_complete_backup_20250902_020000.sql")
    second = drill(api, "shop_complete_backup")
    assert second["verdict"] == "pass", second["findings"]
    assert second["baseline"] == first["id"]
    assert [f["code"] for f in second["findings"]] == ["OBJECT_ADDED"]
    assert second["backups"] == ["shop_complete_backup_20250902_020000.sql"]

    # Someone emptied orders and dropped a function before the night's backup.
    execute(url, "DELETE FROM orders")
    execute(url, "DROP FUNCTION order_total(int)")
    dump("shop_complete_backup_20250903_020000.sql")
    third = drill(api, "shop_complete_backup")
    assert third["verdict"] == "fail"
    assert third["baseline"] == second["id"]
    assert ("TABLE_EMPTIED", "public.orders") in serious(third)
    assert ("OBJECT_MISSING", "FUNCTION public.order_total") in serious(third)
    emptied = next(f for f in third["findings"] if f["code"] == "TABLE_EMPTIED")
    assert (emptied["before"], emptied["after"]) == (1030, 0)
    assert third["baseline_facts"]["rows"]["public.orders"] == 1030

    # The seed's case: a "complete" backup that holds only the schema.
    dump("shop_complete_backup_20250904_020000.sql", "--schema-only")
    fourth = drill(api, "shop_complete_backup")
    assert ("CONTENT_MISMATCH", "shop_complete_backup_20250904_020000.sql") in serious(fourth)
    assert fourth["baseline"] == second["id"]  # a failed drill never becomes the baseline

    listed = api.get("/v1/series").json()["series"]
    shop = next(s for s in listed if s["name"] == "shop_complete_backup")
    assert len(shop["backups"]) == 4
    assert shop["last_drill"]["id"] == fourth["id"]
    assert shop["baseline"]["id"] == second["id"]
    assert shop["every_seconds"] == 86400
    assert shop["stale"] is True  # its newest backup is from 2025
    history = api.get("/v1/series/shop_complete_backup/drills").json()["drills"]
    assert [d["id"] for d in history] == [fourth["id"], third["id"], second["id"], first["id"]]

    # A person says the emptied table is how things are now: the baseline moves.
    accepted = api.post(f"/v1/drills/{third['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    listed = api.get("/v1/series").json()["series"]
    shop = next(s for s in listed if s["name"] == "shop_complete_backup")
    assert shop["baseline"]["id"] == third["id"]
    assert api.get("/v1/drills/nope").status_code == 404
    assert api.post("/v1/series/nope/drills").status_code == 404
    # No drill left a sandbox behind: only the source's container runs.
    assert [c for c in api.containers() if source["id"] not in str(c.labels)] == []


def test_the_watcher_drills_new_backups_and_raises_the_alarms(
    live_server: Any, backups_dir: Path, manufacturing: Manufacturing, browser: Any
) -> None:
    """On start only each series' newest backup is drilled; a backup that arrives later is
    drilled once written; the drills file's checks run; drill.finished and series.stale
    are sent (signed) and the drill metrics say the same."""
    complete = manufacturing.dir / "manufacturing_complete.sql"
    for day in ("01", "02"):
        shutil.copyfile(complete, backups_dir / f"plant_202509{day}_020000.sql")
    (backups_dir / "restorebox-drills.yaml").write_text(
        "series:\n"
        "  - name: plant\n"
        '    match: "plant_*.sql"\n'
        "    every: 24h\n"
        "    min_rows: {public.organizations: 1}\n"
        "    checks:\n"
        "      - name: organizations\n"
        "        sql: select count(*) from public.organizations\n"
        f"        expect: {manufacturing.counts['public.organizations']}\n"
        "    ignore:\n"
        "      - code: OBJECT_ADDED\n"
        "        reason: new tables are expected every release\n"
    )
    receiver = Receiver()
    settings = {"drill_poll_seconds": 0.3, "drill_settle_seconds": 0.5}
    try:
        with live_server(
            drills=True, webhook_url=receiver.url, webhook_secret="s" * 16, **settings
        ) as server:
            client = server.client()
            first = wait_for_drills(client, "plant", 1)
            assert first[0]["backups"] == ["plant_20250902_020000.sql"]  # the newest only
            assert first[0]["verdict"] == "pass", first[0]["findings"]
            # Tonight's backup arrives, written in two goes: drilled once it is whole.
            late = backups_dir / "plant_20250903_020000.sql"
            schema = (manufacturing.dir / "manufacturing_schema.sql").read_bytes()
            late.write_bytes(schema[: len(schema) // 2])
            time.sleep(0.2)
            late.write_bytes(schema)
            drills = wait_for_drills(client, "plant", 2)
            newest = drills[0]
            assert newest["backups"] == ["plant_20250903_020000.sql"]
            assert newest["verdict"] == "fail"
            codes = {f["code"] for f in newest["findings"] if f["severity"] == "fail"}
            assert {"CONTENT_MISMATCH", "CHECK_FAILED", "TABLE_EMPTIED"} <= codes
            listed = client.get("/v1/series").json()
            assert listed["drills_file_error"] is None
            plant = next(s for s in listed["series"] if s["name"] == "plant")
            assert plant["stale"] is True  # its backups are from 2025, one a day expected
            assert plant["every_seconds"] == 86400
            receiver.wait_for(4)
            events = receiver.events()
            assert events.count("drill.finished") == 2
            # Once per newest backup: the late one's name still says 2025, so it is still
            # stale, and said so once more.
            assert events.count("series.stale") == 2
            finished = [json.loads(b) for _, b in receiver.requests]
            last = next(e for e in reversed(finished) if e["event"] == "drill.finished")
            assert last["drill"]["verdict"] == "fail"
            assert any(f["code"] == "CONTENT_MISMATCH" for f in last["drill"]["findings"])
            m = _metrics(client.get("/metrics").text)
            assert m["restorebox_series_stale"][(("series", "plant"),)] == 1
            assert m["restorebox_drill_findings"][(("series", "plant"), ("severity", "fail"))] >= 3
            assert m["restorebox_drill_duration_seconds_count"][()] == 2
            assert m["restorebox_backup_age_seconds"][(("series", "plant"),)] > 86400
            success = m["restorebox_drill_last_success_timestamp_seconds"]
            assert success[(("series", "plant"),)] > time.time() - 600
            see_it_in_the_dashboard(browser, server.url, newest["id"])
    finally:
        receiver.server.shutdown()


def see_it_in_the_dashboard(browser: Any, url: str, failed_drill: str) -> None:
    """The Drills page: the series, stale, its history drawn; the failed drill's page with
    its findings and the rows before and after."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/ui#token={TOKEN}")
    page.click("nav a[data-view=drills]")
    row = page.locator("#series tr[data-series='plant']")
    expect(row).to_contain_text("stale")
    # Rows, restore seconds, bytes (the largest table's history needs two drills that
    # carry its rows; the schema-only one does not).
    expect(row.locator("svg")).to_have_count(3)
    row.get_by_role("link").click()
    expect(page.locator("#drill-verdict")).to_contain_text("fail")
    assert failed_drill in page.url
    expect(page.locator("#findings")).to_contain_text("CONTENT_MISMATCH")
    expect(page.locator("#rows")).to_contain_text("public.organizations")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert errors == []
    page.close()


def wait_for_drills(client: Any, series: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        response = client.get(f"/v1/series/{series}/drills")
        drills = response.json().get("drills", []) if response.status_code == 200 else []
        if len(drills) >= count and all(d["status"] == "done" for d in drills):
            return list(drills)
        assert time.monotonic() < deadline, drills
        time.sleep(0.3)


def test_verify_for_ci_without_a_service(tmp_path: Path, manufacturing: Manufacturing) -> None:
    """`restorebox verify` runs the drill in its own process against the local engine:
    0 when nothing is found, 1 for the seed's schema-only "complete" backup compared with
    the last good one (JSON and JUnit say why), 2 when it cannot run."""
    env = {
        **os.environ,
        "RESTOREBOX_STATE_DIR": str(tmp_path / "state"),
        "RESTOREBOX_SNAPSHOT_MAX_BYTES": "0",
    }
    env.pop("RESTOREBOX_URL", None)
    good = tmp_path / "plant_complete_20250901.sql"
    shutil.copyfile(manufacturing.dir / "manufacturing_complete.sql", good)
    bad = tmp_path / "plant_complete_20250902.sql"
    shutil.copyfile(manufacturing.dir / "manufacturing_schema.sql", bad)

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "verify", *args], env=env, capture_output=True, text=True, timeout=600
        )

    passed = verify(str(good), "--json")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["verdict"] == "pass"
    junit_path = tmp_path / "drill.xml"
    failed = verify(str(bad), "--junit", str(junit_path))
    assert failed.returncode == 1, failed.stderr
    assert "CONTENT_MISMATCH" in failed.stdout
    suite = ElementTree.parse(junit_path).getroot()  # noqa: S314 (our own output)
    assert int(suite.get("failures") or 0) >= 1
    assert any("CONTENT_MISMATCH" in (c.get("name") or "") for c in suite.iter("testcase"))
    # The same comparison, named explicitly, and a threshold nothing reaches.
    again = verify(str(bad), "--against", str(good), "--fail-on", "fail")
    assert again.returncode == 1
    missing = verify(str(tmp_path / "nope.sql"))
    assert missing.returncode == 2
    assert "no such backup" in missing.stderr
    # Nothing of the drills is left: no container, no scratch folder.
    assert not list((tmp_path / "state").glob("verify-*"))


SHOP_GROWING = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (id serial PRIMARY KEY, name text, price numeric);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers,
                     created_at timestamptz DEFAULT now());
CREATE TABLE order_lines (order_id int REFERENCES orders, product_id int REFERENCES products,
                          qty int);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, note text);
CREATE VIEW revenue AS SELECT o.id, sum(l.qty * p.price) AS total FROM orders o
    JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id GROUP BY o.id;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 300) g;
INSERT INTO products (name, price) SELECT 'p' || g, g FROM generate_series(1, 150) g;
INSERT INTO orders (customer_id) SELECT 1 + g % 300 FROM generate_series(1, 2000) g;
INSERT INTO order_lines
    SELECT 1 + g % 2000, 1 + g % 150, 1 + g % 5 FROM generate_series(1, 6000) g;
"""


def test_thirty_real_backups_of_a_growing_database_and_planted_faults(
    api: Api, backups_dir: Path, tmp_path: Path
) -> None:
    """Real pg_dump files of a database of our own, one a day with normal growth (rows up
    a few percent, a new index now and then, an audit log trimmed under the threshold):
    the facts read from 32 successive files give nothing at warn or above. Then one fault
    planted per backup, each named with its code and object."""
    from restorebox.backups import Catalog
    from restorebox.drills.compare import Rules, compare
    from restorebox.drills.facts import from_backups
    from restorebox.drills.model import Facts, verdict_of

    (backups_dir / "seed.sql").write_text(SHOP_GROWING)
    source = api.create(backup="seed.sql", probes="none")
    url = source["connection_url"]
    files = tmp_path / "series"
    files.mkdir()
    catalog = Catalog(files, max_bytes=10**10, cache_file=None)

    def dump(name: str, *args: str) -> Facts:
        data = exec_in_sandbox(source, "pg_dump", "-U", "restorebox", *args, source["database"])
        (files / name).write_bytes(data)
        backup = catalog.get(name)
        return Facts(**from_backups([backup], None), status="ready", verdict="pass")

    baseline: Facts | None = None
    rng = random.Random(19)
    try:
        for day in range(1, 33):
            grow = rng.randint(10, 60)
            execute(
                url,
                "INSERT INTO orders (customer_id)"
                f" SELECT 1 + g % 300 FROM generate_series(1, {grow}) g",
            )
            execute(
                url,
                "INSERT INTO order_lines SELECT o.id, 1 + o.id % 150, 1 FROM orders o"
                f" ORDER BY o.id DESC LIMIT {grow * 3}",
            )
            execute(
                url,
                "INSERT INTO audit_log (note)"
                f" SELECT 'n' FROM generate_series(1, {rng.randint(5, 40)})",
            )
            if day % 10 == 0:
                execute(url, f"CREATE INDEX orders_day{day}_idx ON orders (created_at, id)")
            if day % 7 == 0:  # retention trims the oldest audit rows, well under 10%
                execute(
                    url,
                    "DELETE FROM audit_log"
                    " WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT 3)",
                )
            facts = dump(f"shop_{day:02d}.sql")
            findings = compare("shop_complete", facts, baseline, Rules())
            serious = [f for f in findings if f.severity != "info"]
            assert serious == [], (day, serious)
            if verdict_of(findings) == "pass":
                baseline = facts
        assert baseline is not None

        def planted(sql: str, *args: str) -> set[tuple[str, str | None]]:
            execute(url, sql)
            facts = dump("shop_fault.sql", *args)
            found = compare("shop_complete", facts, baseline, Rules())
            return {(f.code, f.object) for f in found if f.severity != "info"}

        assert ("ROWS_DROPPED", "public.order_lines") in planted(
            "DELETE FROM order_lines WHERE order_id % 3 = 0"
        )
        assert ("TABLE_EMPTIED", "public.audit_log") in planted("DELETE FROM audit_log")
        assert ("OBJECT_MISSING", "TRIGGER public.orders_touch") in planted(
            "DROP TRIGGER orders_touch ON orders"
        )
        assert ("OBJECT_MISSING", "VIEW public.revenue") in planted("DROP VIEW revenue")
        assert ("TABLE_MISSING", "public.audit_log") in planted("DROP TABLE audit_log")
        schema_only = planted("SELECT 1", "--schema-only")
        assert ("CONTENT_MISMATCH", "shop_fault.sql") in schema_only
        # A file cut short (disk full during the dump).
        whole = (files / "shop_fault.sql").read_bytes()
        dump("shop_whole.sql")
        cut = (files / "shop_whole.sql").read_bytes()
        (files / "shop_cut.sql").write_bytes(cut[: len(cut) * 2 // 3])
        facts = Facts(**from_backups([catalog.get("shop_cut.sql")], None), status="ready")
        found = {(f.code, f.object) for f in compare("shop_complete", facts, baseline, Rules())}
        assert ("TRUNCATED", "shop_cut.sql") in found
        assert whole  # the schema-only file was written and read
    finally:
        catalog.close()
