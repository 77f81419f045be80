"""Issue 11: the engine outlives the service, bounded memory, safe inputs, principals,
passwords out of configuration and state, bounded waits, kept failures in the limit,
cross-instance garbage collection, and a crash in the middle of a delete."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
import pytest

from restorebox.errors import SandboxStartTimeout
from restorebox.runtime import ContainerSpec
from tests.conftest import AUTH, CLI, Api, LiveServer
from tests.fakes import FakeRuntime
from tests.integration.lifecycle.test_faults import Service, containers_of

pytestmark = pytest.mark.integration


def test_the_engine_runs_in_a_session_of_its_own(docker_runtime: object) -> None:
    pids = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout
    if not pids.split():
        pytest.skip("the engine is not a local dockerd")
    for pid in map(int, pids.split()):
        # Ctrl-C at a terminal reaches its foreground process group; SIGHUP its session.
        assert os.getsid(pid) != os.getsid(0)
        assert os.getpgid(pid) != os.getpgid(0)


def rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_what_a_dump_prints_never_grows_the_service(tmp_path: Path, backups_dir: Path) -> None:
    # ~1 GB on psql's stdout and ~100 MB of notices on its stderr, in a few lines.
    (backups_dir / "loud.sql").write_text(
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
        + "SELECT repeat('x', 200000000);\n" * 5
        + "DO $$ BEGIN RAISE NOTICE '%', repeat('y', 50000000); END $$;\n" * 2
        + "CREATE TABLE after_the_noise (id int);\n"
    )
    service = Service(tmp_path / "state", backups_dir)
    service.start()
    try:
        assert service.proc is not None
        before = rss_peak_kib(service.proc.pid)
        started = time.monotonic()
        sandbox = service.http.post(
            "/v1/sandboxes", json={"backup": "loud.sql", "wait": True}, timeout=600
        ).json()
        elapsed = time.monotonic() - started
        assert sandbox["status"] == "ready", sandbox
        assert sandbox["verdict"] == "pass"
        peak = rss_peak_kib(service.proc.pid)
        assert peak < 250 * 1024, f"service peak memory {peak} KiB (was {before} KiB)"
        assert elapsed < 120
        service.http.delete(f"/v1/sandboxes/{sandbox['id']}")
    finally:
        service.stop(signal.SIGTERM)


def test_members_outside_the_backups_folder_and_special_files_are_refused(
    api: Api, backups_dir: Path, tmp_path: Path
) -> None:
    dump = backups_dir / "dirdump"
    dump.mkdir()
    (dump / "toc.dat").write_bytes(b"PGDMP")
    secret = tmp_path / "host-secret"
    secret.write_text("do not copy me")
    (dump / "4242.dat.gz").symlink_to(secret)
    response = api.post("/v1/sandboxes", {"backup": "dirdump"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_backup_name"
    assert "outside the backups folder" in response.json()["message"]
    os.mkfifo(backups_dir / "pipe.sql")
    response = api.post("/v1/sandboxes", {"backup": "pipe.sql"})
    assert response.status_code == 422
    assert "FIFO" in response.json()["message"]
    listing = api.get("/v1/backups").json()
    assert {u["name"] for u in listing["unreadable"]} == {"dirdump", "pipe.sql"}
    assert api.containers() == []


def test_tokens_are_principals(make_api: Any) -> None:
    tokens = "alice=alice-token-0123456789,bob=bob-token-0123456789"
    with make_api(api_tokens=tokens) as api:
        alice = {"Authorization": "Bearer alice-token-0123456789"}
        bob = {"Authorization": "Bearer bob-token-0123456789"}
        made = api.client.post("/v1/sandboxes", json={"wait": True}, headers=alice).json()
        assert made["status"] == "ready"
        path = f"/v1/sandboxes/{made['id']}"
        assert api.client.get(path, headers=bob).status_code == 404
        assert api.client.delete(path, headers=bob).status_code == 404
        assert api.client.get("/v1/sandboxes", headers=bob).json()["sandboxes"] == []
        assert api.client.get(path, headers=alice).status_code == 200
        assert api.get(path).status_code == 200  # the admin token sees everyone's
        assert api.client.delete(path, headers=alice).status_code == 204


def test_passwords_stay_out_of_container_config_and_leave_state_on_delete(api: Api) -> None:
    sandbox = api.create()
    password = psycopg.conninfo.conninfo_to_dict(sandbox["connection_url"])["password"]
    assert isinstance(password, str)
    [container] = containers_of(sandbox["id"])
    attrs = docker.from_env().api.inspect_container(container.id)
    assert password not in str(attrs)
    assert api.delete(f"/v1/sandboxes/{sandbox['id']}").status_code == 204
    state = api.settings.state_dir
    with sqlite3.connect(state / "state.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in state.glob("state.sqlite3*"))
    assert password.encode() not in raw


def test_kept_failures_count_toward_the_limit(
    api_factory_limit_one: Api, backups_dir: Path
) -> None:
    api = api_factory_limit_one
    (backups_dir / "broken.sql").write_text(
        "CREATE TABLE ok (id int);\nCREAT TABLE nope (id int);\n"
    )
    failed = api.create(expect="failed", backup="broken.sql", keep_on_failure=True)
    assert len(containers_of(failed["id"])) == 1  # kept for inspection
    response = api.post("/v1/sandboxes", {})
    assert response.status_code == 429
    assert api.delete(f"/v1/sandboxes/{failed['id']}").status_code == 204
    assert containers_of(failed["id"]) == []
    api.create()


@pytest.fixture
def api_factory_limit_one(make_api: Any) -> Any:
    with make_api(max_sandboxes=1) as api:
        yield api


class BlockingRuntime(FakeRuntime):
    """Starts containers only when released: keeps sandboxes 'creating' on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def start(self, spec: ContainerSpec) -> Any:
        self.release.wait(60)
        raise SandboxStartTimeout("released")


def test_fifty_waiting_clients_never_starve_the_health_check(
    tmp_path: Path, backups_dir: Path
) -> None:
    import uvicorn

    from restorebox.api import create_app
    from tests.conftest import free_port, service_settings

    runtime = BlockingRuntime()
    settings = service_settings(
        tmp_path, backups_dir, port=free_port(), max_sandboxes=100, max_wait_seconds=30
    )
    app = create_app(settings, runtime, background=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    live = LiveServer(f"http://127.0.0.1:{settings.port}", settings, app)
    results: list[int] = []

    def waiter() -> None:
        with live.client() as client:
            results.append(client.post("/v1/sandboxes", json={"wait": True}).status_code)

    waiters = [threading.Thread(target=waiter) for _ in range(50)]
    try:
        for w in waiters:
            w.start()
        time.sleep(2)  # every waiter is in, holding its request open
        with httpx.Client(base_url=live.url, timeout=5) as client:
            for _ in range(5):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                assert time.monotonic() - started < 1.0
                assert client.get("/v1/sandboxes", headers=AUTH).status_code == 200
    finally:
        runtime.release.set()
        for w in waiters:
            w.join(60)
        server.should_exit = True
        thread.join(30)
    assert results == [201] * 50  # each one answered once its sandbox was settled


def test_a_wait_is_bounded(tmp_path: Path, backups_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from restorebox.api import create_app
    from tests.conftest import service_settings

    runtime = BlockingRuntime()
    settings = service_settings(tmp_path, backups_dir, max_wait_seconds=0.5)
    with TestClient(create_app(settings, runtime, background=False)) as client:
        started = time.monotonic()
        response = client.post("/v1/sandboxes", json={"wait": True}, headers=AUTH)
        assert time.monotonic() - started < 5
        assert response.status_code == 202
        assert response.json()["status"] == "creating"
        runtime.release.set()


def networks_of(instance: str) -> list[str]:
    import docker

    found = docker.from_env().networks.list(filters={"label": f"restorebox.instance={instance}"})
    return [str(n.name) for n in found]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def test_gc_finds_an_orphaned_instance_and_never_touches_a_live_one(
    tmp_path: Path, backups_dir: Path, docker_runtime: object
) -> None:
    old = Service(tmp_path / "old-state", backups_dir)
    old.start()
    orphan = old.http.post("/v1/sandboxes", json={"wait": True}).json()
    old.stop(signal.SIGKILL)
    old_instance = (tmp_path / "old-state" / "instance-id").read_text().strip()
    subprocess.run(["rm", "-rf", str(tmp_path / "old-state")], check=True)  # state is gone

    live = Service(tmp_path / "live-state", backups_dir)
    live.start()
    try:
        mine = live.http.post("/v1/sandboxes", json={"wait": True}).json()
        env = {**live.env}
        report = run_cli(env, "gc")
        assert report.returncode == 0, report.stderr
        [row] = [line for line in report.stdout.splitlines() if old_instance in line]
        assert "vanished instance" in row  # its labels name a state directory now gone
        assert len(containers_of(orphan["id"])) == 1  # only reported

        # The networks it made ahead (its pool) say where its state was, too.
        assert networks_of(old_instance), "the killed instance made no networks ahead"
        removed = run_cli(env, "gc", "--yes")  # no need to know the vanished instance's id
        assert removed.returncode == 0, removed.stderr
        assert containers_of(orphan["id"]) == []
        assert networks_of(old_instance) == []
        assert len(containers_of(mine["id"])) == 1  # the live instance's sandbox is untouched
        # Seen from another state directory, the live instance is another instance: its
        # state directory exists, so nothing of it is removed, --yes or not.
        bystander = {**env, "RESTOREBOX_STATE_DIR": str(tmp_path / "bystander-state")}
        seen = run_cli(bystander, "gc", "--yes")
        assert seen.returncode == 0, seen.stderr
        assert "other instance" in seen.stdout
        assert len(containers_of(mine["id"])) == 1
        assert live.http.get(f"/v1/sandboxes/{mine['id']}").json()["status"] == "ready"
        live.http.delete(f"/v1/sandboxes/{mine['id']}")
    finally:
        live.stop(signal.SIGTERM)


def test_a_crash_in_the_middle_of_a_delete_is_finished_by_the_next_start(
    tmp_path: Path, backups_dir: Path, docker_runtime: object
) -> None:
    service = Service(tmp_path / "state", backups_dir)
    service.start()
    sandbox = service.http.post("/v1/sandboxes", json={"wait": True}).json()
    service.stop(signal.SIGKILL)
    # The crash point: the delete had recorded "deleting" and not yet removed anything.
    db = sqlite3.connect(tmp_path / "state" / "state.sqlite3")
    with db:
        db.execute(
            "UPDATE sandboxes SET status = 'deleting',"
            " doc = json_set(doc, '$.status', 'deleting') WHERE id = ?",
            (sandbox["id"],),
        )
    db.close()
    assert len(containers_of(sandbox["id"])) == 1
    service.start()
    try:
        after = service.wait_status(sandbox["id"], {"deleted"})
        assert after["connection_url"] is None
        assert containers_of(sandbox["id"]) == []
    finally:
        service.stop(signal.SIGTERM)


def test_gc_finds_a_vanished_instance_that_left_only_its_networks(
    tmp_path: Path, backups_dir: Path, docker_runtime: object
) -> None:
    """An instance killed before any sandbox leaves only the networks it made ahead:
    they name its state directory, so `restorebox gc --yes` removes them once it is gone."""
    old = Service(tmp_path / "old-state", backups_dir)
    old.start()
    old.stop(signal.SIGKILL)
    old_instance = (tmp_path / "old-state" / "instance-id").read_text().strip()
    subprocess.run(["rm", "-rf", str(tmp_path / "old-state")], check=True)
    assert networks_of(old_instance), "the killed instance made no networks ahead"
    env = {**old.env, "RESTOREBOX_STATE_DIR": str(tmp_path / "other-state")}
    report = run_cli(env, "gc")
    assert report.returncode == 0, report.stderr
    assert any(
        old_instance in line and "vanished instance" in line for line in report.stdout.splitlines()
    )
    assert networks_of(old_instance)  # only reported
    removed = run_cli(env, "gc", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert networks_of(old_instance) == []
