"""Issue 10, the parts that need no engine: log formats, webhook events and signatures,
metrics from status changes, the client's error handling. (Each is also exercised end to
end by the integration tests.)"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from restorebox.logs import JsonFormatter, TextFormatter
from restorebox.models import ErrorInfo, ProbeResult, RestoreReport, RestoreStep, Status
from restorebox.notify.metrics import Metrics
from restorebox.notify.webhooks import event_for, signature
from restorebox.tools.client import ApiError, Client, Event, ServiceUnreachable
from restorebox.tools.client import Sandbox as ClientSandbox
from restorebox.tools.progress_view import ProgressView
from tests.unit.snapshots.test_snapshots import sandbox


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "restorebox"})
    record.__dict__.update(extra)
    return record


def test_json_logs_carry_fields_but_no_escape_codes() -> None:
    record = _record("ready", sandbox="ab12", color_message="\x1b[36mready\x1b[0m")
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "ready"
    assert entry["sandbox"] == "ab12"
    assert "color_message" not in entry
    assert "\x1b" not in line


def test_text_logs_are_readable_and_coloured_only_for_a_terminal() -> None:
    record = _record("sandbox ready", sandbox="ab12")
    plain = TextFormatter(colour=False).format(record)
    assert "sandbox ready" in plain
    assert "sandbox=ab12" in plain
    assert "\x1b" not in plain
    assert "\x1b[32m" in TextFormatter(colour=True).format(record)


def test_webhook_events_for_the_four_moments_only() -> None:
    creating, ready = sandbox(status=Status.PROBING), sandbox(status=Status.READY, verdict="pass")
    event = event_for(creating, ready)
    assert event is not None
    assert event["event"] == "sandbox.ready"
    assert event["sandbox"]["verdict"] == "pass"
    assert event_for(sandbox(status=Status.RESETTING), ready) is None  # a reset is no news
    assert event_for(ready, ready) is None
    assert event_for(sandbox(status=Status.CREATING), sandbox(status=Status.RESTORING)) is None
    failed = sandbox(status=Status.FAILED, error=ErrorInfo(code="restore_failed", message="x"))
    failed_event = event_for(creating, failed)
    assert failed_event is not None
    assert failed_event["sandbox"]["error"]["code"] == "restore_failed"
    deleting = sandbox(status=Status.DELETING)
    for final, name in ((Status.DELETED, "sandbox.deleted"), (Status.EXPIRED, "sandbox.expired")):
        made = event_for(deleting, sandbox(status=final))
        assert made is not None
        assert made["event"] == name


def test_webhook_signature_is_the_hmac_of_the_body() -> None:
    body = b'{"event":"sandbox.ready"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"


def _samples(metrics: Metrics) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_follow_status_changes() -> None:
    metrics = Metrics()
    metrics.watch_state(lambda: [sandbox(status=Status.READY)], lambda: [])
    report = RestoreReport(
        duration_seconds=3.0,
        steps=[RestoreStep(backup="b", format="plain", content="complete", tool="psql", bytes=10)],
    )
    probes = [ProbeResult(name="p", description="", status="pass", detail="", duration_seconds=1)]
    ready = sandbox(status=Status.READY, verdict="pass", restore=report, probes=probes)
    metrics.observe(sandbox(status=Status.PROBING), ready)
    metrics.observe(sandbox(status=Status.RESETTING), ready)  # a reset counts nothing
    copy = sandbox(status=Status.READY, verdict="pass", restore=report, from_snapshot=True)
    metrics.observe(sandbox(status=Status.CREATING), copy)
    engine = ErrorInfo(code="engine_unavailable", message="down")
    metrics.observe(sandbox(status=Status.RESTORING), sandbox(status=Status.FAILED, error=engine))
    metrics.observe(sandbox(status=Status.DELETING), sandbox(status=Status.EXPIRED))
    s = _samples(metrics)
    assert s['restorebox_verdicts_total{"verdict": "pass"}'] == 2
    assert s["restorebox_restore_duration_seconds_count{}"] == 1
    assert s["restorebox_restore_duration_seconds_sum{}"] == 3.0
    assert s["restorebox_restored_bytes_total{}"] == 10
    assert s['restorebox_sandbox_failures_total{"reason": "engine_unavailable"}'] == 1
    assert s["restorebox_engine_errors_total{}"] == 1
    assert s["restorebox_expiries_total{}"] == 1
    assert s['restorebox_sandboxes{"status": "ready"}'] == 1
    assert s['restorebox_sandboxes{"status": "creating"}'] == 0


def test_client_errors_are_typed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/sandboxes/gone":
            return httpx.Response(404, json={"code": "sandbox_not_found", "message": "no"})
        return httpx.Response(500, text="<html>proxy error</html>")

    client = Client("http://restorebox.test", "t")
    client.http = httpx.Client(
        base_url=client.url, transport=httpx.MockTransport(answer), headers={"Authorization": "x"}
    )
    with pytest.raises(ApiError) as missing:
        client.get("gone")
    assert (missing.value.status, missing.value.code) == (404, "sandbox_not_found")
    with pytest.raises(ApiError) as broken:
        client.get("other")
    assert broken.value.code == "error"
    assert "proxy error" in broken.value.message
    with pytest.raises(ServiceUnreachable):
        Client("http://127.0.0.1:9", timeout=2).get("x")


def test_progress_lines_off_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False)
    with view:
        for status, phase, done in (
            ("restoring", "restoring", 10_000_000),
            ("restoring", "restoring", 20_000_000),  # same phase, soon after: no new line
            ("probing", "probing", 0),
        ):
            data = {"id": "ab", "status": status, "progress": {"phase": phase}}
            data["progress"].update(bytes_done=done, bytes_total=40_000_000 if done else 0)
            view(Event("progress", ClientSandbox(data)))
    lines = out.getvalue().splitlines()
    assert lines == ["ab restoring: restoring 10.0/40.0 MB", "ab probing: probing"]
