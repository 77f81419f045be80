"""Issue 9: restore once, copy in a second. The snapshot cache (hits, misses on a changed
backup or options, fresh), eviction that never removes a snapshot in use, reset keeping the
URL, save-then-copy, and a kill -9 while a snapshot is being taken."""

from __future__ import annotations

import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest

from tests.conftest import THIRD_PARTY, Api, execute, query
from tests.integration.lifecycle.test_faults import Service, containers_of

pytestmark = pytest.mark.integration


@pytest.fixture
def api(make_api: Any) -> Any:
    """A service with the snapshot cache on (the suite's default is off)."""
    with make_api(snapshot_max_bytes=10 * 1024**3) as api:
        yield api


def snapshots(api: Api) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api.get("/v1/snapshots").json()["snapshots"]
    return listed


def northwind(backups_dir: Path, name: str = "northwind.sql") -> str:
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir / name)
    return name


def test_a_second_copy_comes_from_the_snapshot_with_fresh_credentials(
    api: Api, backups_dir: Path
) -> None:
    name = northwind(backups_dir)
    first = api.create(backup=name)
    assert not first["from_snapshot"]
    assert first["snapshot_id"]
    [kept] = snapshots(api)
    assert (kept["id"], kept["backups"], kept["kind"]) == (first["snapshot_id"], [name], "cache")
    if kept["size_basis"] == "exclusive":  # a store: all its blocks are its source's too
        assert kept["logical_bytes"] > 0
    else:
        assert kept["size_bytes"] > 0

    copy = api.create(backup=name)
    assert copy["from_snapshot"]
    assert copy["snapshot_id"] == kept["id"]
    assert copy["verdict"] == first["verdict"]
    assert "copied from snapshot" in copy["restore"]["warnings"][0]
    assert copy["connection_url"] != first["connection_url"]
    assert query(copy["connection_url"], "SELECT count(*) FROM orders") == [(830,)]
    # The snapshot's password (the first sandbox's) never works on a copy.
    old = psycopg.conninfo.conninfo_to_dict(first["connection_url"])
    new = psycopg.conninfo.conninfo_to_dict(copy["connection_url"])
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=new["host"], port=new["port"], user=new["user"],
            password=old["password"], dbname=new["dbname"], connect_timeout=5,
        )  # fmt: skip


def test_changed_backups_options_and_fresh_miss_the_cache(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    first = api.create(backup=name)
    other_options = api.create(backup=name, probes="none")
    assert not other_options["from_snapshot"]
    with (backups_dir / name).open("a") as handle:
        handle.write("\n-- one more line\n")
    changed = api.create(backup=name)
    assert not changed["from_snapshot"]
    assert changed["snapshot_id"] != first["snapshot_id"]
    fresh = api.create(backup=name, fresh=True)
    assert not fresh["from_snapshot"]
    listed = {s["id"]: s for s in snapshots(api)}
    assert fresh["snapshot_id"] in listed
    # "fresh" replaced it; it stays only while the sandbox `changed` can reset to it.
    assert listed[changed["snapshot_id"]]["replaced_by"] == fresh["snapshot_id"]
    assert len(listed) == 4
    assert api.delete(f"/v1/sandboxes/{changed['id']}").status_code == 204
    ids = {s["id"] for s in snapshots(api)}
    assert changed["snapshot_id"] not in ids
    assert len(ids) == 3  # first, other options, the refreshed changed one


def test_eviction_never_removes_a_snapshot_in_use(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    first = api.create(backup=name)
    copy = api.create(backup=name)
    manager = api.services.manager
    manager.settings.snapshot_max_bytes = 1  # everything is over the limit now
    assert manager.snapshots.evict() == []  # but the copy uses it
    assert api.delete(f"/v1/snapshots/{first['snapshot_id']}").status_code == 409
    assert api.delete(f"/v1/sandboxes/{copy['id']}").status_code == 204
    assert manager.snapshots.evict() == []  # the first sandbox still resets to it
    assert api.delete(f"/v1/sandboxes/{first['id']}").status_code == 204
    assert manager.snapshots.evict() == [first["snapshot_id"]]
    assert snapshots(api) == []


def test_reset_keeps_the_url_and_brings_the_data_back(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    sandbox = api.create(backup=name)
    url = sandbox["connection_url"]
    execute(url, "DELETE FROM order_details")
    started = time.monotonic()
    response = api.post(f"/v1/sandboxes/{sandbox['id']}/reset", {"wait": True})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 10
    after = response.json()
    assert after["status"] == "ready"
    assert after["connection_url"] == url
    assert query(url, "SELECT count(*) FROM order_details") == [(2155,)]


def test_a_one_off_check_keeps_no_snapshot(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    sandbox = api.create(backup=name, keep_snapshot=False)
    assert sandbox["verdict"] == "pass"
    assert sandbox["snapshot_id"] is None
    assert snapshots(api) == []
    response = api.post(f"/v1/sandboxes/{sandbox['id']}/reset", {"wait": True})
    assert response.status_code == 409
    assert "no snapshot" in response.json()["message"]
    # The next create of the same backup restores (and keeps one this time).
    again = api.create(backup=name)
    assert not again["from_snapshot"]
    assert len(snapshots(api)) == 1


def test_save_then_copy(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    sandbox = api.create(backup=name)
    execute(sandbox["connection_url"], "CREATE TABLE migration_marker AS SELECT 42 AS v")
    saved = api.post(f"/v1/sandboxes/{sandbox['id']}/snapshot", {"name": "after-migration"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["kind"] == "named"
    copy = api.create(snapshot="after-migration")
    assert copy["from_snapshot"]
    assert query(copy["connection_url"], "SELECT v FROM migration_marker") == [(42,)]
    again = api.post(f"/v1/sandboxes/{sandbox['id']}/snapshot", {"name": "after-migration"})
    assert again.status_code == 409


def test_kill_9_while_a_snapshot_is_taken_serves_no_half_snapshot(
    tmp_path: Path, backups_dir: Path, docker_runtime: object
) -> None:
    (backups_dir / "big.sql").write_text(
        "CREATE TABLE t (id int, pad text);\n"
        "INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500000) g;\n"
    )
    service = Service(tmp_path / "state", backups_dir)
    service.env["RESTOREBOX_SNAPSHOT_MAX_BYTES"] = str(10 * 1024**3)
    service.start()
    try:
        made = service.http.post(
            "/v1/sandboxes", json={"backup": "big.sql", "probes": "none"}
        ).json()
        deadline = time.monotonic() + 120
        while True:
            body = service.http.get(f"/v1/sandboxes/{made['id']}").json()
            if (body.get("progress") or {}).get("phase") == "snapshotting":
                break
            assert body["status"] not in ("ready", "failed"), "the snapshot phase was missed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        service.stop(signal.SIGKILL)
        service.start()
        after = service.wait_status(made["id"], {"failed"})
        assert after["error"]["code"] == "interrupted"
        assert service.http.get("/v1/snapshots").json()["snapshots"] == []
        engine = docker.from_env()
        instance = (tmp_path / "state" / "instance-id").read_text().strip()
        mine = {"label": f"restorebox.instance={instance}"}
        deadline = time.monotonic() + 60
        while engine.images.list(filters=mine) or containers_of(made["id"]):
            assert time.monotonic() < deadline, "a snapshot image or container leaked"
            time.sleep(0.5)
        again = service.http.post(
            "/v1/sandboxes", json={"backup": "big.sql", "probes": "none", "wait": True}
        ).json()
        assert again["status"] == "ready"
        assert not again["from_snapshot"]
        assert service.http.delete(f"/v1/sandboxes/{again['id']}").status_code == 204
        for snapshot in service.http.get("/v1/snapshots").json()["snapshots"]:
            assert service.http.delete(f"/v1/snapshots/{snapshot['id']}").status_code == 204
    finally:
        service.stop(signal.SIGTERM)


def hot_copies_of(api: Api, snapshot_id: str) -> int:
    count: int = api.get(f"/v1/snapshots/{snapshot_id}").json()["hot_copies"]
    return count


def wait_hot(api: Api, snapshot_id: str, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while hot_copies_of(api, snapshot_id) != count:
        assert time.monotonic() < deadline, f"hot copies of {snapshot_id} never reached {count}"
        time.sleep(0.1)


def test_hot_copies_are_claimed_at_once_each_its_own_server(
    make_api: Any, backups_dir: Path
) -> None:
    name = northwind(backups_dir)
    with make_api(snapshot_max_bytes=10 * 1024**3, hot_copies=2, max_sandboxes=4) as api:
        first = api.create(backup=name)
        snapshot_id = first["snapshot_id"]
        warm = api.create(backup=name)  # copied on request; the pool now keeps copies of it
        assert warm["from_snapshot"]
        wait_hot(api, snapshot_id, 2)
        listed = {s["id"] for s in api.get("/v1/sandboxes").json()["sandboxes"]}
        assert listed == {first["id"], warm["id"]}  # waiting copies are nobody's: not listed

        started = time.monotonic()
        claimed = api.create(backup=name, ttl_seconds=600)
        assert time.monotonic() - started < 1.0  # no container work at all
        by_name = api.create(snapshot=snapshot_id)
        # Two more sandboxes fit under max_sandboxes=4: the waiting copies took no slot.
        for copy in (claimed, by_name):
            assert copy["status"] == "ready"
            assert copy["from_snapshot"]
            assert copy["snapshot_id"] == snapshot_id
            assert copy["id"] not in listed
            assert copy["verdict"] == first["verdict"]
            assert query(copy["connection_url"], "SELECT count(*) FROM orders") == [(830,)]
        expires = datetime.fromisoformat(claimed["expires_at"])
        assert abs((expires - datetime.now(UTC)).total_seconds() - 600) < 30
        urls = {s["connection_url"] for s in (first, warm, claimed, by_name)}
        assert len(urls) == 4  # each its own password and port
        # Each its own server: what one changes, the other does not see.
        execute(claimed["connection_url"], "DELETE FROM order_details")
        assert query(by_name["connection_url"], "SELECT count(*) FROM order_details") == [(2155,)]
        reset = api.post(f"/v1/sandboxes/{claimed['id']}/reset", {"wait": True})
        assert reset.json()["connection_url"] == claimed["connection_url"]
        assert query(claimed["connection_url"], "SELECT count(*) FROM order_details") == [(2155,)]
        wait_hot(api, snapshot_id, 2)  # refilled once creates paused
        assert "restorebox_hot_copies 2.0" in api.get("/metrics").text
        assert 'restorebox_sandboxes{status="ready"} 4.0' in api.get("/metrics").text

        # The snapshot's hot copies go before it does; nothing of them is left.
        for sandbox in (first, warm, claimed, by_name):
            assert api.delete(f"/v1/sandboxes/{sandbox['id']}").status_code == 204
        deadline = time.monotonic() + 30
        while (status := api.delete(f"/v1/snapshots/{snapshot_id}").status_code) == 409:
            assert time.monotonic() < deadline  # a reset's old container is still going
            time.sleep(0.5)
        assert status == 204
        assert api.containers() == []


def test_hot_copies_a_killed_service_left_are_removed_at_start(
    tmp_path: Path, backups_dir: Path, docker_runtime: object
) -> None:
    name = northwind(backups_dir)
    service = Service(tmp_path / "state", backups_dir)
    service.env["RESTOREBOX_SNAPSHOT_MAX_BYTES"] = str(10 * 1024**3)
    service.env["RESTOREBOX_HOT_COPIES"] = "2"
    service.start()
    try:
        first = service.http.post("/v1/sandboxes", json={"backup": name, "wait": True}).json()
        copy = service.http.post("/v1/sandboxes", json={"backup": name, "wait": True}).json()
        assert copy["from_snapshot"]
        snapshot = f"/v1/snapshots/{first['snapshot_id']}"
        deadline = time.monotonic() + 90
        while service.http.get(snapshot).json()["hot_copies"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        service.stop(signal.SIGKILL)
        engine = docker.from_env()
        instance = (tmp_path / "state" / "instance-id").read_text().strip()
        mine = {"label": [f"restorebox.instance={instance}", "restorebox.sandbox"]}

        def others() -> set[str]:
            """Sandboxes other than the two made, that containers belong to."""
            found = engine.containers.list(all=True, filters=mine)
            return {c.labels["restorebox.sandbox"] for c in found} - {first["id"], copy["id"]}

        assert len(others()) == 2  # the two hot copies
        service.start()
        deadline = time.monotonic() + 60
        while others():
            assert time.monotonic() < deadline, "hot copies of the killed service leaked"
            time.sleep(0.5)
        for sandbox in (first, copy):
            assert service.http.get(f"/v1/sandboxes/{sandbox['id']}").json()["status"] == "ready"
            assert service.http.delete(f"/v1/sandboxes/{sandbox['id']}").status_code == 204
        deadline = time.monotonic() + 30
        while service.http.delete(snapshot).status_code == 409:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        service.stop(signal.SIGTERM)


def password_of(sandbox: dict[str, Any]) -> str:
    password: str = psycopg.conninfo.conninfo_to_dict(sandbox["connection_url"])["password"]
    return password


def image_holds(image: Any, needles: list[bytes]) -> list[bytes]:
    """Which of ``needles`` appear anywhere in an image as `docker save` writes it: every
    layer's files (uncompressed) and its configuration."""
    longest = max(map(len, needles))
    found: set[bytes] = set()
    tail = b""
    for chunk in image.save(chunk_size=4 * 1024 * 1024):
        window = tail + chunk
        found.update(n for n in needles if n in window)
        tail = window[-longest:]
    return sorted(found)


def test_no_snapshot_image_holds_a_password_and_a_copy_reads_no_credentials(
    api: Api, backups_dir: Path
) -> None:
    """A copy's superuser can read its snapshot's files and environment: nothing there may
    log into another sandbox (the first sandbox's password file used to be committed)."""
    name = northwind(backups_dir)
    first = api.create(backup=name)
    copy = api.create(backup=name)
    assert copy["from_snapshot"]
    saved = api.post(f"/v1/sandboxes/{copy['id']}/snapshot", json={"name": "worked-on"})
    assert saved.status_code == 201, saved.text
    copy_of_copy = api.create(snapshot="worked-on")
    sandboxes = [first, copy, copy_of_copy]
    passwords = [password_of(s).encode() for s in sandboxes]

    for sandbox in (copy, copy_of_copy):
        url = sandbox["connection_url"]
        [(secret_file,)] = query(
            url, "SELECT pg_read_file('/run/secrets/restorebox/password', 0, 4096, true)"
        )
        assert secret_file is None  # deleted before the snapshot was taken
        [(environ,)] = query(url, "SELECT pg_read_binary_file('/proc/1/environ')")
        assert not [p for p in passwords if p in bytes(environ)]
    [(own_file,)] = query(
        first["connection_url"],
        "SELECT pg_read_file('/run/secrets/restorebox/password', 0, 4096, true)",
    )
    assert own_file is None  # gone once the server held the verifier

    instance = api.services.manager.instance
    if api.services.store.mode != "overlay":  # snapshots are data directories in the store
        root = Path(api.services.store.path) / "instances" / instance / "snapshots"
        kept = sorted(root.rglob("*"))
        snapshot_dirs = [p for p in kept if p.parent == root and p.is_dir()]
        assert len(snapshot_dirs) == 2  # the cache's and the saved one
        files = [p for p in kept if p.is_file()]
        assert [f for f in files if any(pw in f.read_bytes() for pw in passwords)] == []
        return
    engine = docker.from_env()
    images = engine.images.list(filters={"label": f"restorebox.instance={instance}"})
    assert len(images) == 2  # the cache's and the saved one
    for image in images:
        assert image_holds(image, passwords) == [], image.tags
        env = image.attrs["Config"]["Env"] or []
        assert not [e for e in env if e.startswith("RESTOREBOX_NEW_PASSWORD_VERIFIER=S")]


@pytest.mark.slow
def test_saving_a_snapshot_of_a_big_sandbox_keeps_the_sandbox(api: Api) -> None:
    """The commit pauses the container for as long as it copies the database (seconds at
    1 GB): the reconciler, running meanwhile, must not take it for a vanished one."""
    import threading

    sandbox = api.create()
    url = sandbox["connection_url"]
    execute(
        url,
        "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 32) AS body"
        " FROM generate_series(1, 1000000) AS g",
    )
    [(size,)] = query(url, "SELECT pg_database_size(current_database())")
    assert size >= 1024**3
    answer: dict[str, Any] = {}

    def save() -> None:
        response = api.post(f"/v1/sandboxes/{sandbox['id']}/snapshot", json={"name": "big"})
        answer["status"], answer["body"] = response.status_code, response.json()

    saving = threading.Thread(target=save)
    saving.start()
    held_seen = False
    while saving.is_alive():
        outcome = api.services.manager.reconcile()
        assert sandbox["id"] not in outcome["failed"]
        current = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
        assert current["status"] == "ready", current
        held_seen |= current["hold"] == "snapshot"
        time.sleep(0.2)
    saving.join()
    assert answer["status"] == 201, answer
    assert held_seen
    after = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert (after["status"], after["hold"]) == ("ready", None)
    assert query(url, "SELECT count(*) FROM big") == [(1000000,)]
    copy = api.create(snapshot="big")
    assert query(copy["connection_url"], "SELECT max(id) FROM big") == [(1000000,)]


def test_fresh_keeps_the_replaced_snapshot_until_its_last_sandbox_is_gone(
    api: Api, backups_dir: Path
) -> None:
    name = northwind(backups_dir)
    first = api.create(backup=name)
    fresh = api.create(backup=name, fresh=True)
    assert not fresh["from_snapshot"]
    assert fresh["snapshot_id"] != first["snapshot_id"]
    # The first sandbox still goes back to its own snapshot (no 409 "gone").
    execute(first["connection_url"], "DELETE FROM order_details")
    reset = api.post(f"/v1/sandboxes/{first['id']}/reset")
    assert reset.status_code == 202, reset.text
    ready = api.services.manager.wait(first["id"], timeout=120)
    assert ready.status.value == "ready"
    assert query(first["connection_url"], "SELECT count(*) FROM order_details") != [(0,)]
    # New creates copy the fresh one; the replaced one goes with its last sandbox.
    assert api.create(backup=name)["snapshot_id"] == fresh["snapshot_id"]
    assert {s["id"] for s in snapshots(api)} == {first["snapshot_id"], fresh["snapshot_id"]}
    assert api.delete(f"/v1/sandboxes/{first['id']}").status_code == 204
    assert {s["id"] for s in snapshots(api)} == {fresh["snapshot_id"]}


def test_options_a_snapshot_cannot_honour_are_refused(api: Api, backups_dir: Path) -> None:
    name = northwind(backups_dir)
    first = api.create(backup=name)
    for extra in (
        {"assertions": [{"name": "orders", "sql": "SELECT count(*) = 830 FROM orders"}]},
        {"postgres": "15" if first["postgres_version"] != "15" else "17"},
        {"database": "another_name"},
        {"probes": "none"},
    ):
        refused = api.post("/v1/sandboxes", json={"snapshot": first["snapshot_id"], **extra})
        assert refused.status_code == 422, (extra, refused.text)
        body = refused.json()
        assert body["code"] == "invalid_request"
        assert next(iter(extra)) in body["message"]
    same = {"snapshot": first["snapshot_id"], "database": first["database"], "wait": True}
    assert api.post("/v1/sandboxes", json=same).status_code == 201  # what it is: fine


def test_a_failed_snapshot_leaves_the_sandbox_ready(api: Api) -> None:
    """A database error while taking a snapshot is the snapshot's failure (409,
    snapshot_failed), never the sandbox's or an internal error."""
    sandbox = api.create()
    url = sandbox["connection_url"]
    user = psycopg.conninfo.conninfo_to_dict(url)["user"]
    execute(url, f'ALTER ROLE "{user}" NOSUPERUSER')  # its own to do: CHECKPOINT now fails
    saved = api.post(f"/v1/sandboxes/{sandbox['id']}/snapshot", json={"name": "cannot"})
    assert saved.status_code == 409, saved.text
    assert saved.json()["code"] == "snapshot_failed"
    current = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert (current["status"], current["hold"]) == ("ready", None)
    assert query(url, "SELECT 1") == [(1,)]
