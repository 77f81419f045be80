"""Issue 5: expiry, protection, limits and concurrency on the real engine."""

from __future__ import annotations

import contextlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pytest

from restorebox.runtime import labels
from tests.conftest import AUTH, Api, LiveServer

pytestmark = pytest.mark.integration


def wait_for(predicate: Any, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_expiry_reaps_within_seconds_unless_protected(make_api: Any) -> None:
    with make_api(reap_interval_seconds=0.5) as api:
        doomed = api.create(ttl_seconds=10)
        kept = api.create(ttl_seconds=10)
        patched = api.patch(f"/v1/sandboxes/{kept['id']}", {"protected": True})
        assert patched.status_code == 200
        assert patched.json()["protected"] is True

        expired = wait_for(
            lambda: api.get(f"/v1/sandboxes/{doomed['id']}").json()["status"] == "expired",
            timeout=30,
        )
        assert expired
        names = {c.name for c in api.containers()}
        assert f"restorebox-{doomed['id']}" not in names
        assert f"restorebox-{kept['id']}" in names
        time.sleep(1)
        assert api.get(f"/v1/sandboxes/{kept['id']}").json()["status"] == "ready"
        assert api.delete(f"/v1/sandboxes/{kept['id']}").status_code == 204
        assert api.containers() == []


def test_ttl_can_be_extended_within_the_maximum(make_api: Any) -> None:
    with make_api(max_ttl_seconds=7200) as api:
        sandbox = api.create(ttl_seconds=60)
        extended = api.patch(f"/v1/sandboxes/{sandbox['id']}", {"ttl_seconds": 7000}).json()
        assert extended["expires_at"] > sandbox["expires_at"]
        too_long = api.patch(f"/v1/sandboxes/{sandbox['id']}", {"ttl_seconds": 8000})
        assert too_long.status_code == 422
        assert "maximum" in too_long.json()["message"]
        assert api.post("/v1/sandboxes", {"ttl_seconds": 8000}).status_code == 422
        api.delete(f"/v1/sandboxes/{sandbox['id']}")
        gone = api.patch(f"/v1/sandboxes/{sandbox['id']}", {"ttl_seconds": 100})
        assert gone.status_code == 409


def test_ten_concurrent_creates_succeed_or_get_429(live_server: Any) -> None:
    with live_server(max_sandboxes=6) as server:
        server: LiveServer

        def create(_: int) -> Any:
            with server.client() as client:
                return client.post("/v1/sandboxes", json={"wait": True, "ttl_seconds": 300})

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(create, range(10)))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] * 6 + [429] * 4, [r.text for r in responses]
        ready = [r.json() for r in responses if r.status_code == 201]
        assert all(s["status"] == "ready" for s in ready), ready
        ports = {s["connection_url"].rsplit(":", 1)[1] for s in ready}
        assert len(ports) == 6
        assert len({s["id"] for s in ready}) == 6
        too_many = next(r.json() for r in responses if r.status_code == 429)
        assert too_many["code"] == "too_many_sandboxes"


def test_request_body_limit(api: Api) -> None:
    response = api.client.post(
        "/v1/sandboxes",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@pytest.mark.slow
def test_hundred_cycles_with_random_kills_leave_nothing_behind(make_api: Any) -> None:
    rng = random.Random(1234)
    engine = docker.from_env()
    with make_api(max_sandboxes=50, reap_interval_seconds=0.5) as api:
        for _ in range(100):
            response = api.post("/v1/sandboxes", {"ttl_seconds": 600})
            assert response.status_code == 202, response.text
            sandbox_id = response.json()["id"]
            action = rng.choice(["now", "ready", "kill-ready", "kill-early"])
            if action in ("ready", "kill-ready"):
                api.services.manager.wait(sandbox_id, timeout=60)
            elif action == "kill-early":
                time.sleep(rng.uniform(0, 0.6))
            if action.startswith("kill"):
                for c in engine.containers.list(
                    all=True, sparse=True, filters={"label": f"{labels.SANDBOX}={sandbox_id}"}
                ):
                    with contextlib.suppress(docker.errors.APIError):
                        c.kill()  # may be not running yet, or already gone
            assert api.delete(f"/v1/sandboxes/{sandbox_id}").status_code == 204
        api.services.manager.reconcile()
        instance = api.services.manager.instance
    # This service's own: another run's leftovers on a shared engine are not its leaks.
    label = f"{labels.INSTANCE}={instance}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.networks.list(filters={"label": label}) == []
    assert engine.volumes.list(filters={"label": label}) == []


def test_chunked_bodies_are_limited_too(api: Api) -> None:
    def chunks() -> Any:
        yield b'{"ttl_seconds": 60, "database": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = api.client.post(
        "/v1/sandboxes", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert api.containers() == []
