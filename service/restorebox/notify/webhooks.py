"""Webhooks: a JSON event for each sandbox that becomes ready, fails, expires or is deleted,
for each finished drill and each series whose backups stopped arriving, POSTed to
``RESTOREBOX_WEBHOOK_URL``.

Delivery never blocks the lifecycle: events go on a bounded queue that one thread sends,
retrying with exponential backoff (tenacity) on connection errors and 5xx/429 answers.
With a secret, each request carries ``X-Restorebox-Signature: sha256=<hex>``, the HMAC-SHA256
of the exact body, like GitHub's ``X-Hub-Signature-256``; receivers compare it with
``hmac.compare_digest``."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from restorebox.drills.model import Drill
from restorebox.drills.series import Series
from restorebox.models import Sandbox, Status, utcnow

log = logging.getLogger("restorebox.notify.webhooks")

EVENTS = {
    Status.FAILED: "sandbox.failed",
    Status.EXPIRED: "sandbox.expired",
    Status.DELETED: "sandbox.deleted",
}
SIGNATURE_HEADER = "X-Restorebox-Signature"
QUEUE_SIZE = 1000


class _Retryable(Exception):
    pass


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_for(before: Sandbox, after: Sandbox) -> dict[str, Any] | None:
    """The event a status change makes, if it is one webhooks report."""
    if before.status == after.status:
        return None
    if after.status == Status.READY:
        if before.status == Status.RESETTING:
            return None
        name = "sandbox.ready"
    elif after.status in EVENTS:
        name = EVENTS[after.status]
    else:
        return None
    return {
        "event": name,
        "delivery": uuid.uuid4().hex,
        "at": utcnow().isoformat(),
        "sandbox": {
            "id": after.id,
            "seq": after.seq,  # the sandbox's status changes, counted: order by it
            "status": after.status.value,
            "verdict": after.verdict,
            "backups": after.backups,
            "owner": after.owner,
            "error": after.error.model_dump(mode="json") if after.error else None,
        },
    }


def drill_finished(drill: Drill) -> dict[str, Any]:
    """``drill.finished``: the series, the backups, the verdict and every finding."""
    return {
        "event": "drill.finished",
        "delivery": uuid.uuid4().hex,
        "at": utcnow().isoformat(),
        "drill": {
            "id": drill.id,
            "series": drill.series,
            "backups": drill.backups,
            "verdict": drill.verdict,
            "baseline": drill.baseline,
            "restore_seconds": drill.restore_seconds,
            "findings": [f.model_dump(mode="json") for f in drill.findings],
        },
    }


def series_stale(series: Series, now: datetime) -> dict[str, Any]:
    """``series.stale``: no backup within the series' expected interval."""
    newest = series.newest
    return {
        "event": "series.stale",
        "delivery": uuid.uuid4().hex,
        "at": utcnow().isoformat(),
        "series": {
            "name": series.name,
            "newest": newest[0] if newest else None,
            "newest_at": newest[1].isoformat() if newest else None,
            "age_seconds": round((now - newest[1]).total_seconds()) if newest else None,
            "every_seconds": series.expected_interval(),
        },
    }


@dataclass
class WebhookSender:
    url: str
    secret: str | None = None
    attempts: int = 6
    backoff_seconds: float = 0.5
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._client = httpx.Client(timeout=self.timeout_seconds)
        self._thread.start()

    def observe(self, before: Sandbox, after: Sandbox) -> None:
        """The state machine's listener: queue the event, never wait."""
        event = event_for(before, after)
        if event is not None:
            self.send(event)

    def send(self, event: dict[str, Any]) -> None:
        """Queue an event (a drill's, a series'), never wait."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("webhook queue full; event dropped", extra={"event": event["event"]})

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._client.close()  # else the thread, a daemon, ends with the process

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._deliver(event)
            except Exception:  # one bad delivery never stops the rest
                log.exception("webhook delivery failed", extra={"event": event["event"]})

    def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "restorebox-webhooks",
            "X-Restorebox-Event": event["event"],
            "X-Restorebox-Delivery": event["delivery"],
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=60),
            retry=retry_if_exception_type(_Retryable),
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._post(body, headers)
        except RetryError:
            log.warning(
                "webhook not delivered",
                extra={"event": event["event"], "attempts": self.attempts, "url": self.url},
            )
        except httpx.HTTPError as exc:
            log.warning("webhook refused", extra={"event": event["event"], "error": str(exc)})

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise _Retryable(str(exc)) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}")
        response.raise_for_status()
