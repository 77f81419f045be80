"""Issue 10: the pytest plugin, run by pytest in a temporary project against a real service:
the fixture makes sandboxes, and every one is deleted at the end of the session, after a
failure, and after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from restorebox.tools.client import Client
from tests.conftest import THIRD_PARTY, TOKEN, copy_backup

pytestmark = pytest.mark.integration

PROJECT_TESTS = '''
import os
import time

import psycopg
import pytest


@pytest.fixture
def orders_db(restorebox):
    """A fresh copy per test (from the snapshot once the first restore kept one)."""
    return restorebox.sandbox("northwind.sql")


def test_restored_rows(orders_db):
    with psycopg.connect(orders_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] > 800
    assert orders_db.report["verdict"] == "pass"
    assert orders_db.id


def test_each_test_gets_its_own_copy(orders_db):
    with psycopg.connect(orders_db.url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] > 800
        conn.execute("DELETE FROM order_details")


def test_failing(restorebox):
    restorebox.sandbox(None)
    assert os.environ.get("MAKE_IT_FAIL") is None


def test_interrupted(restorebox):
    restorebox.sandbox(None)
    if os.environ.get("WAIT_FOR_CTRL_C"):
        print("WAITING", flush=True)
        time.sleep(120)
'''


def run_project(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as a terminal sends it: a suite started in the background (`cmd &` in a
        # script) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_the_plugin_in_a_temporary_project(
    live_server: Any, backups_dir: Path, tmp_path: Path
) -> None:
    copy_backup(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_with_restorebox.py").write_text(PROJECT_TESTS)
    with live_server(snapshot_max_bytes=10**11) as server, Client(server.url, TOKEN) as client:
        env = {**os.environ, "RESTOREBOX_URL": server.url, "RESTOREBOX_TOKEN": TOKEN}
        env.pop("PYTEST_ADDOPTS", None)

        passing = run_project(project, env, "-k", "not interrupted")
        out, _ = passing.communicate(timeout=600)
        assert passing.returncode == 0, out
        assert "3 passed" in out
        assert client.sandboxes() == []  # every sandbox deleted at the session's end
        made = client.sandboxes(include_gone=True)
        assert len(made) == 3
        assert sum(1 for s in made if s.data["from_snapshot"]) == 1  # second test: a copy

        failing = run_project(project, {**env, "MAKE_IT_FAIL": "1"}, "-k", "failing")
        out, _ = failing.communicate(timeout=600)
        assert failing.returncode == 1, out
        assert client.sandboxes() == []

        # Options instead of the environment.
        bare = {k: v for k, v in env.items() if not k.startswith("RESTOREBOX_")}
        by_option = run_project(
            project,
            bare,
            "-k",
            "failing",
            f"--restorebox-url={server.url}",
            f"--restorebox-token={TOKEN}",
        )
        out, _ = by_option.communicate(timeout=600)
        assert by_option.returncode == 0, out
        assert client.sandboxes() == []

        interrupted = run_project(project, {**env, "WAIT_FOR_CTRL_C": "1"}, "-k", "interrupted")
        assert interrupted.stdout is not None
        deadline = time.monotonic() + 120
        while "WAITING" not in interrupted.stdout.readline():
            assert time.monotonic() < deadline
        assert len(client.sandboxes()) == 1
        interrupted.send_signal(signal.SIGINT)
        out, _ = interrupted.communicate(timeout=120)
        assert "KeyboardInterrupt" in out
        assert client.sandboxes() == []

        # Without a service to talk to: a clear error, not a hang.
        nowhere = run_project(
            project, {**env, "RESTOREBOX_URL": "http://127.0.0.1:9"}, "-k", "failing"
        )
        out, _ = nowhere.communicate(timeout=120)
        assert nowhere.returncode == 1
        assert "cannot reach restorebox" in out
