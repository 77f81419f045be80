"""This service's instance id: labels its containers so two services on one engine
never reconcile away each other's sandboxes."""

from __future__ import annotations

import secrets

from restorebox.errors import StateUnavailable
from restorebox.settings import Settings


def instance_id(settings: Settings) -> str:
    path = settings.state_dir / "instance-id"
    try:
        if path.exists():
            value = path.read_text().strip()
            if value:
                return value
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_hex(8)
        path.write_text(value + "\n")
        return value
    except OSError as exc:
        raise StateUnavailable(f"cannot read or write {path}: {exc}") from exc
