"""The README's flow, through the real `restorebox serve` process and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import docker
import httpx
import psycopg
import pytest

from tests.conftest import CLI, THIRD_PARTY

pytestmark = pytest.mark.integration


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
        "RESTOREBOX_DRILLS": "off",  # the drills watcher is tested on its own
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


def test_cli_for_people(server: dict[str, str]) -> None:
    """create --wait shows progress (plain lines off a terminal), url/wait/psql/ui, --json."""
    created = cli(server, "create", "--wait", "--backup", "northwind.sql")
    assert created.returncode == 0, created.stderr
    url = created.stdout.strip()
    assert url.startswith("postgresql://")
    # Not a terminal: plain progress lines, no escape codes.
    assert "restoring" in created.stderr or "probing" in created.stderr, created.stderr
    assert "\x1b[" not in created.stderr
    assert created.stderr.count("ready: ready") == 1, created.stderr  # the end says it once

    listed = cli(server, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    [sandbox] = json.loads(listed.stdout)
    sandbox_id = sandbox["id"]
    assert sandbox["verdict"] == "pass"
    assert cli(server, "url", sandbox_id).stdout.strip() == url
    assert cli(server, "wait", sandbox_id).stdout.strip() == url
    assert json.loads(cli(server, "show", sandbox_id, "--json").stdout)["id"] == sandbox_id
    # A reader that goes away (`| head`, here `| true`) is no reason for a traceback.
    piped = subprocess.Popen(
        [CLI, "show", sandbox_id, "--json"],
        env=server,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert piped.stdout is not None
    assert piped.stderr is not None
    piped.stdout.close()  # gone before the CLI writes a byte
    piped_stderr = piped.stderr.read()
    piped.wait(timeout=60)
    assert "Traceback" not in piped_stderr, piped_stderr
    assert any(
        b["name"] == "northwind.sql"
        for b in json.loads(cli(server, "backups", "--json").stdout)["backups"]
    )
    assert json.loads(cli(server, "snapshots", "--json").stdout) == []
    (Path(server["RESTOREBOX_BACKUPS_DIR"]) / "bad.sql").write_text("x")
    listed_backups = cli(server, "backups")
    for _ in range(50):  # described in the background: a moment
        if "unreadable" in listed_backups.stderr:
            break
        time.sleep(0.2)
        listed_backups = cli(server, "backups")
    [unreadable] = [line for line in listed_backups.stderr.splitlines() if "bad.sql" in line]
    assert unreadable.count("bad.sql") == 1, unreadable  # named once
    (Path(server["RESTOREBOX_BACKUPS_DIR"]) / "bad.sql").unlink()

    # psql: the local one with the sandbox's URL (or the container's when none is here).
    psql = cli(server, "psql", sandbox_id, "--", "-At", "-c", "SELECT count(*) FROM orders")
    assert psql.returncode == 0, psql.stderr
    assert int(psql.stdout.strip()) > 0
    # ... and the password is not on psql's command line, where `ps` shows it to anyone.
    password = urlsplit(url).password
    assert password
    running = subprocess.Popen(
        [CLI, "psql", sandbox_id, "--", "-At", "-c", "SELECT pg_sleep(3)"],
        env=server,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        argv = b""
        deadline = time.monotonic() + 20
        while b"psql" not in argv.split(b"\0")[0] and time.monotonic() < deadline:
            time.sleep(0.05)  # the CLI execs psql in its own process
            argv = Path(f"/proc/{running.pid}/cmdline").read_bytes()
        assert argv.split(b"\0")[0].endswith(b"psql"), argv
        assert password.encode() not in argv
        assert urlsplit(url).hostname.encode() in argv  # type: ignore[union-attr]
    finally:
        assert running.wait(timeout=30) == 0, running.stderr.read()  # type: ignore[union-attr]

    # No psql on this machine: the sandbox container's own, over its local socket.
    only_docker = Path(server["RESTOREBOX_STATE_DIR"]).parent / "bin"
    only_docker.mkdir()
    (only_docker / "docker").symlink_to(shutil.which("docker") or "/usr/bin/docker")
    inside = cli(
        {**server, "PATH": str(only_docker)},
        "psql",
        sandbox_id,
        "--",
        "-At",
        "-c",
        "SELECT current_user",
    )
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() == urlsplit(url).username

    link = cli(server, "ui").stdout.strip()
    token = (Path(server["RESTOREBOX_STATE_DIR"]) / "api-token").read_text().strip()
    assert link == f"http://127.0.0.1:{server['RESTOREBOX_PORT']}/ui#token={token}"
    bare = cli(server, "ui", "--no-token").stdout.strip()
    assert bare == f"http://127.0.0.1:{server['RESTOREBOX_PORT']}/ui"
    assert cli(server, "rm", sandbox_id).returncode == 0
    missing = cli(server, "url", sandbox_id)
    assert missing.returncode == 1
    assert "deleted" in missing.stderr or "not_found" in missing.stderr


def test_serve_logs_are_readable_on_a_terminal_and_json_otherwise(tmp_path: Path) -> None:
    import pty

    env = {
        **os.environ,
        "RESTOREBOX_PORT": str(free_port()),
        "RESTOREBOX_STATE_DIR": str(tmp_path / "s"),
        "RESTOREBOX_BACKUPS_DIR": str(tmp_path),
    }
    # Not a terminal: JSON lines without escape codes (uvicorn's colour_message dropped).
    proc = subprocess.Popen([CLI, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    lines = _read_until(proc, "restorebox listening")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    for line in lines:
        entry = json.loads(line)
        assert "\x1b" not in line
        assert "color_message" not in entry
    assert any(json.loads(line).get("dashboard", "").endswith("/ui") for line in lines)

    # A terminal: readable, coloured lines.
    leader, follower = pty.openpty()
    proc = subprocess.Popen([CLI, "serve"], env=env, stderr=follower, stdout=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    while b"restorebox listening" not in seen and time.monotonic() < deadline:
        seen += os.read(leader, 4096)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    os.close(leader)
    text = seen.decode()
    assert "restorebox listening" in text
    assert "\x1b[" in text  # coloured
    assert not text.lstrip().startswith("{")


def _read_until(proc: subprocess.Popen[str], needle: str) -> list[str]:
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line:
            lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not logged: {lines}")


def test_a_refused_setting_is_said_plainly(tmp_path: Path) -> None:
    env = {**os.environ, "RESTOREBOX_API_TOKEN": "short", "RESTOREBOX_STATE_DIR": str(tmp_path)}
    served = subprocess.run(
        [CLI, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert served.returncode == 2
    assert "RESTOREBOX_API_TOKEN" in served.stderr
    assert "at least 16" in served.stderr
    assert "Traceback" not in served.stderr


def test_cli_asks_for_a_masked_copy(server: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tables:\n  public.customers:\n    contact_name: name\n    phone: phone\n")
    made = cli(server, "create", "-b", "northwind.sql", "--masking", f"@{policy}", "--wait")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    with psycopg.connect(url) as conn:
        names = {r[0] for r in conn.execute("SELECT contact_name FROM customers").fetchall()}
    assert "Maria Anders" not in names  # northwind's first customer contact
    [sandbox] = json.loads(cli(server, "ls", "--json").stdout)
    sandbox_id = sandbox["id"]
    shown = cli(server, "show", sandbox_id)
    assert "masking:   request" in shown.stdout
    assert "contact_name" in shown.stdout
    cli(server, "rm", sandbox_id)
    bad = cli(server, "create", "-b", "northwind.sql", "--masking", '{"tables": {"x.y": {}}}')
    assert bad.returncode == 1
    assert "masking_policy_invalid" in bad.stderr
    assert "Traceback" not in bad.stderr
