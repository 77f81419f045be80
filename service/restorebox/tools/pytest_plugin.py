"""pytest plugin: a test asks for a database restored from a backup.

Registered through the ``pytest11`` entry point, so installing restorebox is enough:

    def test_orders_survive_the_restore(restorebox):
        db = restorebox.sandbox("prod.dump")          # a ready sandbox (or the test fails)
        with psycopg.connect(db.url) as conn: ...
        assert db.report["verdict"] == "pass"

The ``restorebox`` fixture is session-scoped; every sandbox it made is deleted when the
session ends, also after a failure or Ctrl-C (and each expires on its own after
``--restorebox-ttl`` seconds should the process be killed outright). The service's address
and token come from ``--restorebox-url`` / ``--restorebox-token`` or ``RESTOREBOX_URL`` /
``RESTOREBOX_TOKEN``."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from restorebox.tools.client import ApiError, Client, ClientError, Sandbox

DEFAULT_TTL_SECONDS = 3600


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("restorebox", "restorebox sandboxes")
    group.addoption(
        "--restorebox-url",
        default=None,
        help="restorebox service URL (default: $RESTOREBOX_URL or http://127.0.0.1:8420)",
    )
    group.addoption(
        "--restorebox-token", default=None, help="API token (default: $RESTOREBOX_TOKEN)"
    )
    group.addoption(
        "--restorebox-ttl",
        type=int,
        default=DEFAULT_TTL_SECONDS,
        help="lifetime of each sandbox, a backstop should clean-up never run",
    )


class Sandboxes:
    """Makes sandboxes for tests and remembers them for clean-up."""

    def __init__(self, client: Client, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.made: list[str] = []
        self._lock = threading.Lock()

    def sandbox(self, backup: str | list[str] | None = None, **options: Any) -> Sandbox:
        """A ready sandbox restored from ``backup`` (a name in the service's backups
        folder, or several restored in order); ``options`` are the API's (postgres,
        probes, snapshot, fresh, ...). Fails the test when it cannot be made."""
        options.setdefault("ttl_seconds", self.ttl_seconds)
        try:
            created = self.client.create(backup, wait=False, **options)
            with self._lock:
                self.made.append(created.id)
            return self.client.wait(created.id)
        except ClientError as exc:
            what = f"from {backup!r}" if backup else "(empty)"
            pytest.fail(f"restorebox could not make a sandbox {what}: {exc}", pytrace=False)

    def delete_all(self) -> None:
        with self._lock:
            made, self.made = self.made, []
        for sandbox_id in made:
            try:
                self.client.delete(sandbox_id)
            except ApiError as exc:
                if exc.status != 404:
                    raise


@pytest.fixture(scope="session")
def restorebox(request: pytest.FixtureRequest) -> Iterator[Sandboxes]:
    config = request.config
    client = Client(
        config.getoption("--restorebox-url") or os.environ.get("RESTOREBOX_URL"),
        config.getoption("--restorebox-token") or os.environ.get("RESTOREBOX_TOKEN"),
        timeout=3600,
    )
    sandboxes = Sandboxes(client, config.getoption("--restorebox-ttl"))
    config.stash[_SANDBOXES] = sandboxes
    try:
        yield sandboxes
    finally:
        sandboxes.delete_all()
        client.close()


_SANDBOXES = pytest.StashKey[Sandboxes]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A second chance after Ctrl-C, when fixture teardown may not have run."""
    sandboxes = session.config.stash.get(_SANDBOXES, None)
    if sandboxes is not None and sandboxes.made:
        sandboxes.delete_all()
