"""The service image (compose/compose.yaml runs it): built locally, it drives the host's
engine through the mounted socket and restores backups from a read-only mount."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import docker
import httpx
import pytest

from tests.conftest import REPO, THIRD_PARTY, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_service_image_restores_a_backup(tmp_path: Path, docker_runtime: object) -> None:
    subprocess.run([str(REPO / "scripts" / "build-images"), "service"], check=True, timeout=900)
    backups = tmp_path / "backups"
    backups.mkdir()
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", backups / "northwind.sql")
    port = free_port()
    engine = docker.from_env()
    # What compose/compose.yaml sets up, as one docker run.
    service = engine.containers.run(
        "restorebox/service:latest",
        detach=True,
        network_mode="host",
        environment={"RESTOREBOX_API_TOKEN": "image-token", "RESTOREBOX_PORT": str(port)},
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(backups): {"bind": "/backups", "mode": "ro"},
        },
    )
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=120,
        headers={"Authorization": "Bearer image-token"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get("/healthz").json()["engine"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, service.logs().decode()[-2000:]
            time.sleep(0.3)
        sandbox = http.post("/v1/sandboxes", json={"backup": "northwind.sql", "wait": True}).json()
        assert sandbox["status"] == "ready", sandbox
        assert sandbox["verdict"] == "pass"
        assert http.delete(f"/v1/sandboxes/{sandbox['id']}").status_code == 204
        left = engine.containers.list(
            all=True, sparse=True, filters={"label": f"restorebox.sandbox={sandbox['id']}"}
        )
        assert left == []
    finally:
        service.remove(force=True, v=True)
