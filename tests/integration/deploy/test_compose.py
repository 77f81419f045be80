"""compose/compose.yaml brought up for real with Debian's docker-compose: the service
container drives the host's engine through the socket, restores a backup from the
read-only mount, and `down` leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import httpx
import pytest

from tests.conftest import REPO, THIRD_PARTY, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROJECT = "restorebox-compose-test"


def compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("docker-compose")
    if command is None:
        pytest.fail("docker-compose is missing: ./scripts/test installs Debian's package")
    return subprocess.run(
        [command, "-f", str(REPO / "compose" / "compose.yaml"), "-p", PROJECT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_compose_up_restore_down(tmp_path: Path, docker_runtime: object) -> None:
    subprocess.run([str(REPO / "scripts" / "build-images"), "service"], check=True, timeout=900)
    backups = tmp_path / "backups"
    backups.mkdir()
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", backups / "northwind.sql")
    port = free_port()
    env = {
        **os.environ,
        "RESTOREBOX_API_TOKEN": "compose-token-0123456789",
        "RESTOREBOX_PORT": str(port),
        "RESTOREBOX_BACKUPS": str(backups),
        "RESTOREBOX_SNAPSHOT_MAX_BYTES": "0",  # `down -v` drops the state; no images stay
        "RESTOREBOX_DRILLS": "off",  # the drills watcher is tested on its own
    }
    engine = docker.from_env()
    up = compose(env, "up", "-d")
    assert up.returncode == 0, up.stderr
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=300,
        headers={"Authorization": "Bearer compose-token-0123456789"},
    )
    sandbox_id = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = http.get("/healthz").json()
                if health["engine"] == "ok":
                    assert health["isolation"] == "verified"  # checked before it served
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, compose(env, "logs").stdout[-3000:]
            time.sleep(0.3)
        sandbox = http.post("/v1/sandboxes", json={"backup": "northwind.sql", "wait": True}).json()
        sandbox_id = sandbox["id"]
        assert sandbox["status"] == "ready", sandbox
        assert sandbox["verdict"] == "pass"
        assert http.delete(f"/v1/sandboxes/{sandbox_id}").status_code == 204
    finally:
        down = compose(env, "down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stderr
    project = {"label": f"com.docker.compose.project={PROJECT}"}
    assert engine.containers.list(all=True, filters=project) == []
    assert engine.volumes.list(filters=project) == []
    assert engine.networks.list(filters=project) == []
    assert (
        engine.containers.list(all=True, filters={"label": f"restorebox.sandbox={sandbox_id}"})
        == []
    )
