"""Issue 19: drills of a real series. Successive pg_dump backups of a growing database
pass; a backup that lost a table's rows and a function, and a "complete" backup that
holds only the schema, are named with their codes; no drill leaves a sandbox behind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, exec_in_sandbox, execute

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
