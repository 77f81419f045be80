"""Labels put on everything restorebox creates in the engine, so it can find its own.

Besides its instance, a sandbox container and a snapshot image say where that instance
keeps its state (``STATE_DIR``) and on which host (``HOST``): ``restorebox gc`` can then
tell the leftovers of an instance whose state directory is gone from a live instance's."""

from __future__ import annotations

import functools
import socket
from collections.abc import Mapping
from pathlib import Path

MANAGED = "restorebox.managed"
INSTANCE = "restorebox.instance"
SANDBOX = "restorebox.sandbox"
EXPIRES = "restorebox.expires"
STATE_DIR = "restorebox.state_dir"
HOST = "restorebox.host"
DATA_DIR = "restorebox.data-dir"  # a container's data directory in the store


def home(state_dir: Path) -> dict[str, str]:
    """Where the instance making a container or image keeps its state (read once: every
    start asks)."""
    return dict(_home(state_dir))


@functools.lru_cache(maxsize=8)
def _home(state_dir: Path) -> tuple[tuple[str, str], ...]:
    return ((STATE_DIR, str(state_dir.resolve())), (HOST, socket.gethostname()))


def for_sandbox(
    instance: str, sandbox_id: str, expires_at: str, origin: Mapping[str, str] | None = None
) -> dict[str, str]:
    labels = {MANAGED: "true", INSTANCE: instance, SANDBOX: sandbox_id, EXPIRES: expires_at}
    return {**labels, **(origin or {})}
