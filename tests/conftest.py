"""Shared fixtures. Integration tests get the real Docker engine through ``docker_runtime``
and skip only when no engine answers (``scripts/test`` always starts one)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from restorebox.api import create_app
from restorebox.errors import EngineUnavailable
from restorebox.runtime import labels
from restorebox.runtime.docker import DockerRuntime
from restorebox.settings import Settings

REPO = Path(__file__).resolve().parent.parent
# Third-party dumps, with their licences, kept in the repository (the suite needs nothing
# beside the clone).
THIRD_PARTY = REPO / "tests" / "fixtures" / "third_party"
GENERATED = REPO / "tests" / ".generated"
CLI = str(Path(sys.executable).with_name("restorebox"))  # the console script, installed
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def docker_runtime() -> DockerRuntime:
    runtime = DockerRuntime()
    try:
        runtime.ping()
    except EngineUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
    return runtime


@pytest.fixture(scope="session", autouse=True)
def session_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """One store for every service the suite starts (each has its own instance directory
    in it): a loop-mounted XFS image is made once, not per test, and detached at the end.
    RESTOREBOX_STORE set by the caller (e.g. "off") is kept as it is."""
    import os

    from restorebox.storage import loop

    if os.environ.get("RESTOREBOX_STORE"):
        yield None
        return
    path = tmp_path_factory.mktemp("store")
    os.environ["RESTOREBOX_STORE"] = str(path)
    try:
        yield path
    finally:
        del os.environ["RESTOREBOX_STORE"]
        loop.detach(path / "xfs")
        (path / loop.STORE_IMAGE).unlink(missing_ok=True)


@dataclass
class Manufacturing:
    dir: Path
    counts: dict[str, int]


@pytest.fixture(scope="session")
def manufacturing(docker_runtime: DockerRuntime) -> Manufacturing:
    from tests.fixtures.manufacturing.generate import generate

    out = GENERATED / "manufacturing"
    return Manufacturing(out, generate(out))


@pytest.fixture
def backups_dir(tmp_path: Path) -> Path:
    path = tmp_path / "backups"
    path.mkdir()
    return path


def copy_backup(source: Path, backups_dir: Path, name: str | None = None) -> str:
    target = backups_dir / (name or source.name)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    return target.name


class Api:
    """A TestClient bound to one service instance, with helpers for sandboxes."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=AUTH, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=AUTH, **kw)

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=AUTH)

    def patch(self, path: str, json: Any) -> Any:
        return self.client.patch(path, json=json, headers=AUTH)

    def backup(self, name: str) -> dict[str, Any]:
        """A backup's description, once its background inspection is done."""
        deadline = time.monotonic() + 120
        while True:
            response = self.get(f"/v1/backups/{name}")
            if response.status_code != 202:
                assert response.status_code == 200, response.text
                described: dict[str, Any] = response.json()
                return described
            assert time.monotonic() < deadline, f"{name} is still being inspected"
            time.sleep(0.05)

    def create(self, expect: str = "ready", **body: Any) -> dict[str, Any]:
        body.setdefault("wait", True)
        response = self.post("/v1/sandboxes", body)
        assert response.status_code in (201, 202), response.text
        sandbox: dict[str, Any] = response.json()
        if expect:
            assert sandbox["status"] == expect, (sandbox["error"], sandbox)
        return sandbox

    def containers(self) -> list[Any]:
        runtime = self.services.manager.runtime
        return list(runtime.list_managed({labels.INSTANCE: self.services.manager.instance}))


def service_settings(tmp_path: Path, backups_dir: Path, **overrides: Any) -> Settings:
    """Settings of a service under test: its own state, the test's backups, a known token."""
    # The snapshot cache is off unless a test is about it: every restore would otherwise
    # leave an image behind for the rest of the suite.
    overrides.setdefault("snapshot_max_bytes", 0)
    # The drills watcher would drill every backup a test puts down: on only where tested.
    overrides.setdefault("drills", False)
    return Settings(
        state_dir=tmp_path / "state", backups_dir=backups_dir, api_token=TOKEN, **overrides
    )


def delete_all(manager: Any) -> None:
    for sandbox in manager.list_all():
        manager.delete(sandbox.id)


@pytest.fixture
def make_api(
    tmp_path: Path, backups_dir: Path, docker_runtime: DockerRuntime
) -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []

    @contextmanager
    def factory(**overrides: Any) -> Iterator[Api]:
        settings = service_settings(tmp_path, backups_dir, **overrides)
        with TestClient(create_app(settings, docker_runtime)) as client:
            api = Api(client, settings)
            opened.append(api)
            try:
                yield api
            finally:
                delete_all(api.services.manager)

    yield factory
    for api in opened:
        leftovers = api.containers()
        runtime = api.services.manager.runtime  # with a store: the store's
        for container in leftovers:
            runtime.remove(container.id)
        assert not leftovers, f"sandbox containers leaked: {[c.name for c in leftovers]}"
        remove_snapshots(runtime, api.services.manager.instance)
        assert_no_data_dirs_left(api.services)


def remove_snapshots(runtime: Any, instance: str) -> None:
    """Snapshots a test kept (images, or data directories in the store)."""
    for image in runtime.list_snapshots({labels.INSTANCE: instance}):
        runtime.remove_snapshot(image)


def assert_no_data_dirs_left(services: Any) -> None:
    """A test's sandboxes, deleted, leave no data directory in the store (a reset's old
    one goes a moment after its container)."""
    if services.store.mode == "overlay":
        return
    root = Path(services.store.path) / "instances" / services.manager.instance / "sandboxes"
    deadline = time.monotonic() + 10
    while (left := sorted(p.name for p in root.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"data directories leaked: {left}"


@pytest.fixture
def api(make_api: Callable[..., Any]) -> Iterator[Api]:
    with make_api() as api:
        yield api


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def row_counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        counts = {}
        for table in tables:
            schema, name = table.split(".")
            (count,) = conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name)
                )
            ).fetchone()  # type: ignore[misc]
            counts[table] = count
        return counts


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Any

    def client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, headers=AUTH, timeout=300)


@pytest.fixture
def live_server(
    tmp_path: Path, backups_dir: Path, docker_runtime: DockerRuntime
) -> Iterator[Callable[..., Any]]:
    """A real uvicorn server in a thread (for concurrent clients)."""
    import threading

    import uvicorn

    @contextmanager
    def factory(**overrides: Any) -> Iterator[LiveServer]:
        settings = service_settings(tmp_path, backups_dir, port=free_port(), **overrides)
        app = create_app(settings, docker_runtime)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        live = LiveServer(f"http://127.0.0.1:{settings.port}", settings, app)
        try:
            yield live
        finally:
            manager = app.state.services.manager
            delete_all(manager)
            server.should_exit = True
            thread.join(timeout=30)
            remove_snapshots(manager.runtime, manager.instance)  # snapshots the test kept
            assert_no_data_dirs_left(app.state.services)

    return factory


def exec_in_sandbox(sandbox: dict[str, Any], *argv: str) -> bytes:
    """Run a command in a sandbox's container (as postgres) and return its stdout."""
    import docker

    [container] = docker.from_env().containers.list(
        filters={"label": f"{labels.SANDBOX}={sandbox['id']}"}
    )
    result = container.exec_run(list(argv), user="postgres", demux=True)
    assert result.exit_code == 0, result.output[1]
    out: bytes = result.output[0] or b""
    return out


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: scripts/test installs Debian's chromium package")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()
