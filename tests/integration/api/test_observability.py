"""Issue 10: live events (SSE), Prometheus metrics and webhooks, against a real service on
loopback with real sandboxes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from restorebox.tools.client import ApiError, Client, SandboxFailed
from tests.conftest import THIRD_PARTY, TOKEN, copy_backup

pytestmark = pytest.mark.integration


@pytest.fixture
def northwind(backups_dir: Path) -> str:
    return copy_backup(THIRD_PARTY / "northwind" / "northwind.sql", backups_dir)


@pytest.fixture
def broken(backups_dir: Path) -> str:
    (backups_dir / "broken.sql").write_text(
        "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE t (id int;\n"
    )
    return "broken.sql"


@pytest.fixture
def sizeable(backups_dir: Path) -> str:
    """A plain dump big enough (about 100 MB) to take a few seconds to load, also on a
    store (XFS), where it loads faster than on the overlay path: the restore reports its
    bytes once a second."""
    path = backups_dir / "sizeable.sql"
    with path.open("w") as out:
        out.write("--\n-- PostgreSQL database dump\n--\n\n")
        out.write(
            "CREATE TABLE public.readings (id bigint PRIMARY KEY, sensor text, value float);\n"
        )
        out.write("COPY public.readings (id, sensor, value) FROM stdin;\n")
        for i in range(2_500_000):
            out.write(f"{i}\tsensor-{i % 97:03d}-with-a-longer-name\t{i * 0.5}\n")
        out.write("\\.\n\n")
    return path.name


def test_events_follow_a_sandbox_until_it_is_settled(live_server: Any, sizeable: str) -> None:
    with live_server() as server, Client(server.url, TOKEN) as client:
        created = client.create(sizeable, wait=False)
        events = list(client.events(created.id))
        names = [e.name for e in events]
        statuses = [e.sandbox.status for e in events]
        assert names[-1] == "end"
        assert statuses[-1] == "ready"
        assert "restoring" in statuses
        # In the state machine's order (a short phase may pass between two polls).
        order = ["creating", "restoring", "probing", "ready"]
        seen = list(dict.fromkeys(statuses))
        assert seen == [status for status in order if status in seen]
        assert "progress" in names  # phases and bytes between status changes
        loading = [e.sandbox.progress for e in events if e.sandbox.status == "restoring"]
        assert any(p and p.get("bytes_done") and p.get("bytes_total") for p in loading)
        assert events[-1].sandbox.url is not None
        assert events[-1].sandbox.verdict == "pass"
        # A settled sandbox: its state and the end, at once.
        again = list(client.events(created.id))
        assert [e.name for e in again] == ["status", "end"]

        # Raw SSE framing, as a browser's EventSource reads it.
        with httpx.stream(
            "GET",
            f"{server.url}/v1/sandboxes/{created.id}/events",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            body = response.read().decode()
        assert body.startswith("event: status\ndata: {")
        assert body.endswith("\n\n")

        with pytest.raises(ApiError) as missing:
            list(client.events("no-such-sandbox"))
        assert missing.value.status == 404
        with Client(server.url, "wrong-token") as stranger, pytest.raises(ApiError) as refused:
            list(stranger.events(created.id))
        assert refused.value.status == 401
        client.delete(created.id)


def _metrics(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_in_the_prometheus_text_format(
    live_server: Any, northwind: str, broken: str
) -> None:
    with live_server(snapshot_max_bytes=10**11) as server, Client(server.url, TOKEN) as client:
        assert httpx.get(f"{server.url}/metrics").status_code == 401  # token required
        first = client.create(northwind)
        copy = client.create(northwind)  # from the snapshot the first one kept
        assert copy.data["from_snapshot"]
        with pytest.raises(SandboxFailed):
            client.create(broken)

        m = _metrics(client.metrics())
        assert m["restorebox_sandboxes"][(("status", "ready"),)] == 2
        assert m["restorebox_sandbox_creates_total"][(("source", "backup"),)] == 3
        assert m["restorebox_sandbox_failures_total"][(("reason", "restore_failed"),)] == 1
        assert m["restorebox_verdicts_total"][(("verdict", "pass"),)] == 2
        assert m["restorebox_restore_duration_seconds_count"][()] == 1  # copies do not restore
        assert m["restorebox_probe_duration_seconds_count"][()] == 1
        assert m["restorebox_restored_bytes_total"][()] > 0
        assert m["restorebox_snapshot_cache_misses_total"][()] == 2
        assert m["restorebox_snapshot_cache_hits_total"][()] == 1
        assert m["restorebox_snapshots"][()] == 1
        assert m["restorebox_snapshot_cache_bytes"][()] > 0
        assert all(name.startswith("restorebox_") for name in m)

        for sandbox in (first, copy):
            client.delete(sandbox.id)
        for snapshot in client.snapshots():
            client.delete_snapshot(snapshot["id"])
        m = _metrics(client.metrics())
        assert m["restorebox_deletes_total"][()] == 2
        assert m["restorebox_sandboxes"][(("status", "ready"),)] == 0
    with live_server(metrics_public=True) as server:
        public = httpx.get(f"{server.url}/metrics")
        assert public.status_code == 200
        assert "restorebox_sandboxes" in public.text


class Receiver:
    """A webhook endpoint on loopback that records what it is sent; it answers 503 to the
    first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                receiver.requests.append((dict(self.headers), body))
                failing = receiver.fail_first > 0
                receiver.fail_first -= 1
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.requests]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(fail_first=2)
    yield made
    made.server.shutdown()


def test_webhooks_are_signed_and_retried(
    live_server: Any, northwind: str, broken: str, receiver: Receiver
) -> None:
    secret = "hook-secret"
    with (
        live_server(webhook_url=receiver.url, webhook_secret=secret) as server,
        Client(server.url, TOKEN) as client,
    ):
        sandbox = client.create(northwind)
        client.delete(sandbox.id)
        with pytest.raises(SandboxFailed):
            client.create(broken)
    # Three events; the first was refused twice (503) and delivered on the third try.
    receiver.wait_for(5)
    delivered = [(h, b) for h, b in receiver.requests]
    events = receiver.events()
    assert events[:3] == ["sandbox.ready"] * 3
    assert events[3:5] == ["sandbox.deleted", "sandbox.failed"]  # then the clean-up's deletes
    failure = json.loads(delivered[4][1])["sandbox"]
    assert failure["status"] == "failed"
    assert failure["error"]["code"] == "restore_failed"
    for headers, body in delivered:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Restorebox-Signature"], expected)
        assert headers["X-Restorebox-Event"] == json.loads(body)["event"]
    ready = json.loads(delivered[0][1])
    assert ready["sandbox"]["id"] == sandbox.id
    assert ready["sandbox"]["verdict"] == "pass"
    assert ready["sandbox"]["error"] is None


def test_a_slow_webhook_endpoint_never_slows_a_sandbox(live_server: Any) -> None:
    slow = Receiver(delay=5.0)
    try:
        with live_server(webhook_url=slow.url) as server, Client(server.url, TOKEN) as client:
            started = time.monotonic()
            sandbox = client.create()
            client.delete(sandbox.id)
            assert time.monotonic() - started < 5.0
        slow.wait_for(1, timeout=15)
        assert slow.events()[0] == "sandbox.ready"
    finally:
        slow.server.shutdown()
