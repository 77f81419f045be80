"""Issue 5: faults from outside — killed containers, a killed or stopped service, a
restarted engine, an unusable state directory — leave no orphan and a truthful state."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from restorebox.runtime import labels
from tests.conftest import AUTH, CLI, REPO, TOKEN, Api, free_port

pytestmark = pytest.mark.integration


def containers_of(sandbox_id: str) -> list[Any]:
    return list(
        docker.from_env().containers.list(
            all=True, sparse=True, filters={"label": f"{labels.SANDBOX}={sandbox_id}"}
        )
    )


def reconcile_until_failed(api: Api, sandbox_id: str) -> None:
    """Reconcile until the sandbox is failed: a ready one is failed once it was seen gone
    in two passes past the grace period, never at the first look."""
    deadline = time.monotonic() + 30
    while api.get(f"/v1/sandboxes/{sandbox_id}").json()["status"] != "failed":
        assert time.monotonic() < deadline, f"sandbox {sandbox_id} was never failed"
        api.services.manager.reconcile()  # the service's own reaper may come first
        time.sleep(0.5)


def test_sandbox_container_killed_from_outside_becomes_failed(api: Api) -> None:
    sandbox = api.create()
    containers_of(sandbox["id"])[0].kill()
    reconcile_until_failed(api, sandbox["id"])
    current = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert current["status"] == "failed"
    assert current["error"]["code"] == "container_vanished"
    assert containers_of(sandbox["id"]) == []


class Service:
    """`restorebox serve` as a separate process, as an operator runs it."""

    def __init__(self, state: Path, backups: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "RESTOREBOX_PORT": str(self.port),
            "RESTOREBOX_STATE_DIR": str(state),
            "RESTOREBOX_BACKUPS_DIR": str(backups),
            "RESTOREBOX_API_TOKEN": TOKEN,
            "RESTOREBOX_REAP_INTERVAL_SECONDS": "0.5",
            "RESTOREBOX_SNAPSHOT_MAX_BYTES": "0",  # a test about snapshots turns them on
            "RESTOREBOX_DRILLS": "off",  # the drills watcher is tested on its own
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=AUTH, timeout=60)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [CLI, "serve"],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("service did not start")

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)

    def wait_status(self, sandbox_id: str, wanted: set[str], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.http.get(f"/v1/sandboxes/{sandbox_id}").json()
            if body["status"] in wanted:
                return body
            time.sleep(0.2)
        raise AssertionError(f"{sandbox_id} never reached {wanted}: {body}")


@pytest.fixture
def service(tmp_path: Path, backups_dir: Path, docker_runtime: object) -> Iterator[Service]:
    (backups_dir / "slow.sql").write_text("CREATE TABLE t (id int);\nSELECT pg_sleep(600);\n")
    svc = Service(tmp_path / "state", backups_dir)
    svc.start()
    yield svc
    if svc.proc and svc.proc.poll() is None:
        for sandbox in svc.http.get("/v1/sandboxes").json()["sandboxes"]:
            svc.http.delete(f"/v1/sandboxes/{sandbox['id']}")
        svc.stop(signal.SIGTERM)


def test_kill_9_mid_restore_then_restart_leaves_no_orphan(service: Service) -> None:
    ready = service.http.post("/v1/sandboxes", json={"wait": True}).json()
    busy = service.http.post("/v1/sandboxes", json={"backup": "slow.sql"}).json()
    service.wait_status(busy["id"], {"restoring"})
    service.stop(signal.SIGKILL)
    assert containers_of(busy["id"]), "the kill left the half-made container running"

    service.start()
    after = service.http.get(f"/v1/sandboxes/{busy['id']}").json()
    assert after["status"] == "failed"
    assert after["error"]["code"] == "interrupted"
    assert containers_of(busy["id"]) == []
    store = service.http.get("/healthz").json()["store"]
    if store["mode"] != "overlay":  # its data directory went with its container
        assert list(Path(store["path"]).glob(f"instances/*/sandboxes/{busy['id']}.*")) == []
        assert len(list(Path(store["path"]).glob(f"instances/*/sandboxes/{ready['id']}.*"))) == 1
    # The ready sandbox survived the crash and is still usable.
    survivor = service.http.get(f"/v1/sandboxes/{ready['id']}").json()
    assert survivor["status"] == "ready"
    assert containers_of(ready["id"])[0].status == "running"


def test_sigterm_stops_in_flight_restores_and_keeps_ready_sandboxes(service: Service) -> None:
    ready = service.http.post("/v1/sandboxes", json={"wait": True}).json()
    busy = service.http.post("/v1/sandboxes", json={"backup": "slow.sql"}).json()
    service.wait_status(busy["id"], {"restoring"})
    started = time.monotonic()
    service.stop(signal.SIGTERM)
    assert time.monotonic() - started < 30
    assert containers_of(busy["id"]) == []
    assert containers_of(ready["id"])[0].status == "running"

    service.start()
    after = service.http.get(f"/v1/sandboxes/{busy['id']}").json()
    assert (after["status"], after["error"]["code"]) == ("failed", "cancelled")
    assert service.http.get(f"/v1/sandboxes/{ready['id']}").json()["status"] == "ready"


def test_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("I am a file")
    env = {
        **os.environ,
        "RESTOREBOX_STATE_DIR": str(not_a_dir),
        "RESTOREBOX_PORT": str(free_port()),
        "RESTOREBOX_API_TOKEN": TOKEN,
    }
    result = subprocess.run(
        [CLI, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "state_unavailable" in result.stderr
    assert str(not_a_dir) in result.stderr
    assert "Traceback" not in result.stderr
    assert not_a_dir.read_text() == "I am a file"


@contextmanager
def engine_stopped() -> Iterator[None]:
    """Stop dockerd for the block; it is started again afterwards whatever the block did
    (a failed assertion must not leave the rest of the suite without an engine)."""
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    try:
        yield
    finally:
        wait_until_dockerd_gone()
        subprocess.run([str(REPO / "scripts" / "ensure-docker")], check=True, timeout=120)


def wait_until_dockerd_gone() -> None:
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.5)


@pytest.mark.slow
def test_engine_restart_while_sandboxes_exist(api: Api) -> None:
    sandbox = api.create()
    with engine_stopped():
        wait_until_dockerd_gone()
        assert api.get("/healthz").json()["engine"] == "unavailable"
    assert api.get("/healthz").json()["engine"] == "ok"
    # Without live-restore the container stopped with the engine: the state says so.
    reconcile_until_failed(api, sandbox["id"])
    after = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert after["status"] == "failed"
    assert after["error"]["code"] == "container_vanished"
    assert containers_of(sandbox["id"]) == []
    # And the service still makes sandboxes.
    again = api.create()
    assert again["connection_url"]


def test_engine_restart_during_a_restore_fails_it_clearly_and_leaks_nothing(
    service: Service,
) -> None:
    busy = service.http.post("/v1/sandboxes", json={"backup": "slow.sql"}).json()
    service.wait_status(busy["id"], {"restoring"})
    with engine_stopped():
        failed = service.wait_status(busy["id"], {"failed"}, timeout=120)
    # Whichever the service noticed first: the engine gone, the container stopped, or the
    # server's connection closed by the container's stop.
    assert failed["error"]["code"] in ("engine_unavailable", "container_vanished"), failed
    assert (
        "Docker engine" in failed["error"]["message"] or "container" in failed["error"]["message"]
    )
    # The cleanup the engine refused is retried by the reconciler once it answers.
    deadline = time.monotonic() + 60
    while containers_of(busy["id"]):
        assert time.monotonic() < deadline, "the failed sandbox's container was never removed"
        time.sleep(0.5)
    assert service.http.get(f"/v1/sandboxes/{busy['id']}").json()["status"] == "failed"
