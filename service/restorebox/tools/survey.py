"""`restorebox survey DIR`: restore every backup of a folder once and say how each went.

For a folder of one's own backups: does each one really restore, and what do the probes
say of it? A service of its own runs for the survey (the folder as its backups, a state
directory of its own, no snapshots kept, no drills), so nothing of a running service is
touched; every backup is restored with the API's defaults, judged, and its sandbox
removed at once. The outcome of each is one of:

- ``pass`` / ``warn`` / ``fail``: restored, and the probes' verdict;
- ``failed``: the restore itself failed (the error's code and message);
- ``refused``: restorebox would not restore it (not a backup it reads, an extension no
  image has, ...), with the reason."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from restorebox.settings import Settings
from restorebox.tools.client import ApiError, Client, SandboxFailed
from restorebox.tools.text import table

OUTCOMES = ("pass", "warn", "fail", "failed", "refused")
WHY_LENGTH = 300


@dataclass
class Outcome:
    backup: str
    outcome: str  # one of OUTCOMES
    why: str
    format: str | None = None
    pg_dump_version: str | None = None
    postgres: str | None = None  # the major it was restored into
    seconds: float | None = None
    code: str | None = None  # the error's code, for failed and refused
    probes: dict[str, str] | None = None  # probe -> status, for restored ones


def survey(client: Client, on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Restore every backup the service lists, one at a time, and judge each."""
    listing = _settled_listing(client)
    results = [
        Outcome(u["name"], "refused", u["error"]["message"][:WHY_LENGTH], code=u["error"]["code"])
        for u in listing["unreadable"]
    ]
    for result in results:
        if on_result:
            on_result(result)
    for backup in listing["backups"]:
        result = restore_one(client, backup)
        results.append(result)
        if on_result:
            on_result(result)
    return sorted(results, key=lambda r: r.backup)


def restore_one(client: Client, backup: dict[str, Any]) -> Outcome:
    name = backup["name"]
    base = {"format": backup["format"], "pg_dump_version": backup["pg_dump_version"]}
    started = time.monotonic()
    try:
        sandbox = client.create(name, keep_snapshot=False, ttl_seconds=3600)
    except ApiError as exc:
        return Outcome(name, "refused", exc.message[:WHY_LENGTH], code=exc.code, **base)
    except SandboxFailed as exc:
        failed = exc.sandbox
        _remove(client, failed.id)
        error = failed.error or {}
        return Outcome(
            name,
            "failed",
            str(error.get("message", ""))[:WHY_LENGTH],
            code=error.get("code"),
            postgres=failed.data.get("postgres_version"),
            seconds=round(time.monotonic() - started, 1),
            **base,
        )
    try:
        probes = {p["name"]: p["status"] for p in sandbox.data.get("probes") or []}
        not_passed = [p for p in sandbox.data.get("probes") or [] if p["status"] != "pass"]
        why = "; ".join(f"{p['name']}: {p['detail']}" for p in not_passed[:3])
        return Outcome(
            name,
            sandbox.verdict or "pass",
            why[:WHY_LENGTH] or "every probe passed",
            postgres=sandbox.data.get("postgres_version"),
            seconds=round(time.monotonic() - started, 1),
            probes=probes,
            **base,
        )
    finally:
        _remove(client, sandbox.id)


def _remove(client: Client, sandbox_id: str) -> None:
    with contextlib.suppress(ApiError):  # already gone
        client.delete(sandbox_id)


def _settled_listing(client: Client, timeout: float = 3600) -> dict[str, Any]:
    """The backups listing once nothing is being inspected any more."""
    deadline = time.monotonic() + timeout
    while True:
        listing = client.backups()
        if not listing.get("inspecting") or time.monotonic() > deadline:
            return listing
        time.sleep(1)


def render(results: list[Outcome]) -> str:
    rows = [
        [
            r.backup,
            r.format or "-",
            r.pg_dump_version or "-",
            r.postgres or "-",
            r.outcome,
            (r.code + ": " if r.code else "") + r.why[:100],
        ]
        for r in results
    ]
    counts = ", ".join(f"{sum(r.outcome == o for r in results)} {o}" for o in OUTCOMES)
    headers = ["backup", "format", "pg_dump", "into", "outcome", "why"]
    return table(rows, headers) + f"\n\n{len(results)} backups: {counts}"


def as_json(results: list[Outcome]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


@contextmanager
def own_service(folder: Path, base: Settings) -> Iterator[Client]:
    """A service of the survey's own on a free loopback port: ``folder`` as its backups,
    a temporary state directory, no store, no snapshots, no drills."""
    import uvicorn

    from restorebox.api import create_app

    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="restorebox-survey-") as state, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        settings = base.model_copy(
            update={
                "backups_dir": folder,
                "state_dir": Path(state),
                "host": "127.0.0.1",
                "port": port,
                "store": "off",
                "snapshot_max_bytes": 0,
                "drills": False,
                "hot_copies": 0,
                "api_token": None,
                "api_tokens": [],
            }
        )
        settings = settings.model_copy(update={"api_token": SecretStr(token)})
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        thread = threading.Thread(target=server.run, name="survey-service", daemon=True)
        thread.start()
        client = Client(f"http://127.0.0.1:{port}", token, timeout=3600)
        try:
            _wait_until_up(client, thread)
            yield client
        finally:
            for sandbox in client.sandboxes():
                _remove(client, sandbox.id)
            client.close()
            server.should_exit = True
            thread.join(timeout=60)


def _wait_until_up(client: Client, thread: threading.Thread, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the survey's service did not start (see the log above)")
        try:
            client.request("GET", "/healthz")
            return
        except Exception:  # not listening yet
            time.sleep(0.2)
    raise TimeoutError("the survey's service did not start in time")
