"""The public Python client for a restorebox service.

    from restorebox.tools.client import Client

    with Client() as rb:                          # RESTOREBOX_URL, RESTOREBOX_TOKEN
        sandbox = rb.create("backup.sql")         # waits until ready (or raises)
        print(sandbox.url, sandbox.verdict)
        rb.delete(sandbox.id)

Every call raises ``ApiError`` (with the service's ``code`` and ``message``) on an error
answer, ``ServiceUnreachable`` when nothing answers. ``create`` and ``wait`` follow the
sandbox's live events (``/v1/sandboxes/{id}/events``) and hand each to ``on_event``. The
CLI and the pytest plugin are built on this module."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8420"
ENDED = frozenset({"failed", "deleted", "expired"})  # settled, and not ready


class ClientError(Exception):
    """Anything that went wrong talking to the service."""


class ServiceUnreachable(ClientError):
    pass


class ApiError(ClientError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class SandboxFailed(ClientError):
    """A sandbox waited for ended failed (or was deleted or expired first)."""

    def __init__(self, sandbox: Sandbox) -> None:
        error = sandbox.error or {}
        super().__init__(
            f"sandbox {sandbox.id} {sandbox.status}: "
            f"{error.get('code', '')}: {error.get('message', '')}".rstrip(": ")
        )
        self.sandbox = sandbox


@dataclass(frozen=True)
class Sandbox:
    """A sandbox as the service last described it; ``data`` holds every field."""

    data: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def url(self) -> str | None:
        """The connection URL (once ready)."""
        url = self.data.get("connection_url")
        return str(url) if url else None

    @property
    def verdict(self) -> str | None:
        return self.data.get("verdict")

    @property
    def report(self) -> dict[str, Any]:
        """The restore report, probe results and verdict."""
        return {
            "restore": self.data.get("restore"),
            "probes": self.data.get("probes"),
            "verdict": self.data.get("verdict"),
        }

    @property
    def error(self) -> dict[str, Any] | None:
        return self.data.get("error")

    @property
    def progress(self) -> dict[str, Any] | None:
        return self.data.get("progress")


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: ``status``, ``progress`` or ``end``, with the sandbox state."""

    name: str
    sandbox: Sandbox


EventHandler = Callable[[Event], None]


class Client:
    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0
    ) -> None:
        self.url = (url or os.environ.get("RESTOREBOX_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("RESTOREBOX_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    # -- plumbing -------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnreachable(f"cannot reach restorebox at {self.url}: {exc}") from exc
        _raise_for(response)
        return response.json() if response.content else None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sandboxes ------------------------------------------------------------------
    def create(
        self,
        backup: str | list[str] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_event: EventHandler | None = None,
        **options: Any,
    ) -> Sandbox:
        """Ask for a sandbox (``options`` are the API's: postgres, ttl_seconds, probes,
        snapshot, fresh, ...). With ``wait``, return it ready or raise ``SandboxFailed``."""
        body = {k: v for k, v in options.items() if v is not None}
        if backup is not None:
            body["backup"] = backup
        sandbox = Sandbox(self.request("POST", "/v1/sandboxes", json=body))
        if not wait:
            return sandbox
        return self.wait(sandbox.id, timeout=timeout, on_event=on_event)

    def get(self, sandbox_id: str) -> Sandbox:
        return Sandbox(self.request("GET", f"/v1/sandboxes/{sandbox_id}"))

    def sandboxes(self, include_gone: bool = False) -> list[Sandbox]:
        params = {"all": "true"} if include_gone else None
        data = self.request("GET", "/v1/sandboxes", params=params)
        return [Sandbox(s) for s in data["sandboxes"]]

    def delete(self, sandbox_id: str) -> None:
        self.request("DELETE", f"/v1/sandboxes/{sandbox_id}")

    def extend(self, sandbox_id: str, ttl_seconds: int) -> Sandbox:
        body = {"ttl_seconds": ttl_seconds}
        return Sandbox(self.request("PATCH", f"/v1/sandboxes/{sandbox_id}", json=body))

    def reset(self, sandbox_id: str, *, wait: bool = True) -> Sandbox:
        """Back to the restored state, same URL."""
        data = self.request("POST", f"/v1/sandboxes/{sandbox_id}/reset", json={})
        return self.wait(sandbox_id) if wait else Sandbox(data)

    def wait(
        self,
        sandbox_id: str,
        *,
        timeout: float | None = None,
        on_event: EventHandler | None = None,
    ) -> Sandbox:
        """Follow the sandbox's events until it is settled; ready returns it, anything
        else raises ``SandboxFailed``. ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.events(sandbox_id, deadline=deadline):
                if on_event is not None:
                    on_event(event)
            sandbox = self.get(sandbox_id)
            if sandbox.status == "ready":
                return sandbox
            if sandbox.status in ENDED:
                raise SandboxFailed(sandbox)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"sandbox {sandbox_id} is still {sandbox.status}")

    def events(self, sandbox_id: str, *, deadline: float | None = None) -> Iterator[Event]:
        """The sandbox's live events until it is settled (or ``deadline``, a
        ``time.monotonic()`` value, passes)."""
        timeout = httpx.Timeout(self.http.timeout.connect, read=20.0)
        try:
            with self.http.stream(
                "GET", f"/v1/sandboxes/{sandbox_id}/events", timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                name, data = "message", ""
                for line in response.iter_lines():
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data += line[6:]
                    elif not line and data:
                        yield Event(name, Sandbox(json.loads(data)))
                        name, data = "message", ""
        except httpx.TransportError as exc:
            raise ServiceUnreachable(f"lost the event stream from {self.url}: {exc}") from exc

    # -- snapshots, backups, metrics ------------------------------------------------------
    def save_snapshot(self, sandbox_id: str, name: str) -> dict[str, Any]:
        body = {"name": name}
        saved: dict[str, Any] = self.request(
            "POST", f"/v1/sandboxes/{sandbox_id}/snapshot", json=body
        )
        return saved

    def snapshots(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.request("GET", "/v1/snapshots")["snapshots"]
        return listed

    def delete_snapshot(self, ref: str) -> None:
        self.request("DELETE", f"/v1/snapshots/{ref}")

    def backups(self) -> dict[str, Any]:
        """``{"backups": [...], "unreadable": [...], "inspecting": [...]}``."""
        data: dict[str, Any] = self.request("GET", "/v1/backups")
        return data

    # -- drills ---------------------------------------------------------------------
    def series(self) -> dict[str, Any]:
        """``{"series": [...], "drills_file_error": ...}``."""
        data: dict[str, Any] = self.request("GET", "/v1/series")
        return data

    def drills(self, series: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.request("GET", f"/v1/series/{series}/drills")["drills"]
        return listed

    def drill(self, drill_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.request("GET", f"/v1/drills/{drill_id}")
        return data

    def start_drill(
        self, series: str, *, wait: bool = True, timeout: float = 3600
    ) -> dict[str, Any]:
        """Drill the series' newest backup; with ``wait``, return it once done."""
        drill: dict[str, Any] = self.request("POST", f"/v1/series/{series}/drills")
        deadline = time.monotonic() + timeout
        while wait and drill["status"] != "done":
            if time.monotonic() > deadline:
                raise TimeoutError(f"drill {drill['id']} still running after {timeout:g} s")
            time.sleep(1.0)
            drill = self.drill(drill["id"])
        return drill

    def metrics(self) -> str:
        response = self.http.get("/metrics")
        _raise_for(response)
        return response.text


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        code, message = str(body.get("code", "error")), str(body.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "error", response.text[:500]
    raise ApiError(response.status_code, code, message or f"HTTP {response.status_code}")
