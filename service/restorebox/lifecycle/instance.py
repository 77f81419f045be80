"""This service's instance: its id labels its containers, so two services on one engine
never reconcile away each other's sandboxes; ``template`` is what its containers look
like to the runtime before any sandbox exists (anchors made ahead, the isolation check)."""

from __future__ import annotations

import secrets

from restorebox.errors import StateUnavailable
from restorebox.runtime import ContainerSpec
from restorebox.runtime import labels as L
from restorebox.settings import Settings


def template(settings: Settings, instance: str) -> ContainerSpec:
    """A sandbox-like container of this instance, on an image at hand: the default
    major's."""
    return ContainerSpec(
        image=settings.image_for(settings.default_major(), None)[0],
        name="",
        env={},
        # Where this instance keeps its state: what it makes ahead (networks, anchors) can
        # then be told vanished by `restorebox gc` like its containers.
        labels={L.MANAGED: "true", L.INSTANCE: instance, **L.home(settings.state_dir)},
        publish_host=settings.publish_host,
    )


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
