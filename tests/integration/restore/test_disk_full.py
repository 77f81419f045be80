"""The engine's data root running out of space during a restore: a second Docker engine
whose data root is a small loop-mounted filesystem, so nothing else on the machine fills."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restorebox.api import create_app
from restorebox.runtime.docker import DockerRuntime
from tests.conftest import AUTH, service_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SOCKET = "unix:///run/restorebox-small-engine.sock"
IMAGE = "restorebox/postgres:15"
BRIDGE = "rbxdiskfull0"


def sh(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def small_engine(tmp_path: Path, docker_runtime: object) -> Iterator[DockerRuntime]:
    """An engine with 2.4 GB of disk, of which its one image takes a third."""
    root = tmp_path / "engine"
    mount = root / "mnt"
    mount.mkdir(parents=True)
    disk = root / "disk.img"
    sh("truncate", "-s", "2400M", str(disk))
    sh("mkfs.ext4", "-q", "-F", str(disk))
    sh("mount", "-o", "loop", str(disk), str(mount))
    exec_root = Path("/run/rbx-small-engine")  # short: unix socket paths live under it
    # A default bridge of its own: with "--bridge none" dockerd deletes the host's docker0,
    # which the machine's own engine needs.
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", "10.213.77.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--data-root", str(mount / "docker"),
            "--exec-root", str(exec_root),
            "--pidfile", str(root / "dockerd.pid"),
            "-H", SOCKET,
            "--bridge", BRIDGE,
            "--iptables=false",
            "--ip-masq=false",
        ],
        stdout=(root / "dockerd.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        runtime = DockerRuntime(base_url=SOCKET)
        deadline = time.monotonic() + 60
        while True:
            try:
                runtime.ping()
                break
            except Exception:
                assert daemon.poll() is None, (root / "dockerd.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the small engine did not start"
                time.sleep(0.2)
        save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
        sh("docker", "-H", SOCKET, "load", "-q", stdin=save.stdout)
        save.wait(timeout=300)
        yield runtime
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def test_disk_full_during_a_restore_fails_clearly_and_leaks_nothing(
    small_engine: DockerRuntime, tmp_path: Path, backups_dir: Path
) -> None:
    # Small as a file, about 2.3 GB once restored: more than the engine has left.
    (backups_dir / "huge.sql").write_text(
        "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 32) AS pad"
        " FROM generate_series(1, 2300000) g;\n"
    )
    # The engine's own disk is what fills (a store has its own: tests/integration/storage).
    settings = service_settings(tmp_path, backups_dir, images={15: IMAGE}, store="off")
    with TestClient(create_app(settings, small_engine)) as client:
        response = client.post(
            "/v1/sandboxes", json={"backup": "huge.sql", "wait": True}, headers=AUTH
        )
        sandbox = response.json()
        assert sandbox["status"] == "failed", sandbox
        assert sandbox["error"]["code"] == "restore_failed"
        message = sandbox["error"]["message"].lower()
        assert "no space left on device" in message or "terminated" in message, message
        assert small_engine.list_managed({"restorebox.managed": "true"}) == []
        # The space is given back: a new sandbox starts on the same engine.
        again = client.post("/v1/sandboxes", json={"wait": True}, headers=AUTH).json()
        assert again["status"] == "ready", again
        assert client.delete(f"/v1/sandboxes/{again['id']}", headers=AUTH).status_code == 204
    assert small_engine.list_managed({"restorebox.managed": "true"}) == []
