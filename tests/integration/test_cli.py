"""The README's flow, through the real `restorebox serve` process and the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import psycopg
import pytest

from tests.conftest import THIRD_PARTY

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("restorebox"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, docker_runtime: object) -> Iterator[dict[str, str]]:
    backups = tmp_path / "backups"
    backups.mkdir()
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", backups / "northwind.sql")
    port = free_port()
    env = {
        **os.environ,
        "RESTOREBOX_PORT": str(port),
        "RESTOREBOX_STATE_DIR": str(tmp_path / "s"),
        "RESTOREBOX_BACKUPS_DIR": str(backups),
        "RESTOREBOX_SNAPSHOT_MAX_BYTES": "0",  # no snapshot images left behind
    }
    env.pop("RESTOREBOX_API_TOKEN", None)
    proc = subprocess.Popen(
        [CLI, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"service did not start: {proc.stdout.read() if proc.stdout else ''!r}")
    try:
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_readme_flow(server: dict[str, str], tmp_path: Path) -> None:
    token_file = tmp_path / "s" / "api-token"
    assert token_file.stat().st_mode & 0o777 == 0o600  # generated on first start, private

    created = cli(server, "create", "--wait")
    assert created.returncode == 0, created.stderr
    url = created.stdout.strip()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        assert conn.execute("SELECT body FROM notes").fetchall() == [("hello",)]

    listing = cli(server, "ls")
    assert listing.returncode == 0
    sandbox_id = listing.stdout.splitlines()[1].split()[0]
    assert "ready" in listing.stdout

    backups = cli(server, "backups")
    assert "northwind.sql" in backups.stdout
    assert "complete" in backups.stdout
    restored = cli(server, "create", "--wait", "--backup", "northwind.sql")
    assert restored.returncode == 0, restored.stderr
    restored_id = cli(server, "ls").stdout.splitlines()[2].split()[0]
    shown = cli(server, "show", restored_id)
    assert "verdict:   pass" in shown.stdout
    assert "row_parity" in shown.stdout
    assert "fk_orphans" in shown.stdout

    for sid in (sandbox_id, restored_id):
        removed = cli(server, "rm", sid)
        assert removed.returncode == 0, removed.stderr
    names = [c.name for c in docker.from_env().containers.list(all=True)]
    assert f"restorebox-{sandbox_id}" not in names
    assert f"restorebox-{restored_id}" not in names


def test_cli_reports_api_errors_plainly(server: dict[str, str]) -> None:
    result = cli(server, "show", "does-not-exist")
    assert result.returncode == 1
    assert "sandbox_not_found" in result.stderr
    assert "Traceback" not in result.stderr
