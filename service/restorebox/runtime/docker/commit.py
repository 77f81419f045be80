"""Snapshot images: a container's filesystem committed (paused meanwhile: crash-consistent),
listed, labelled and removed."""

from __future__ import annotations

import docker.errors

from restorebox.errors import ContainerVanished
from restorebox.runtime.base import SnapshotImage
from restorebox.runtime.docker.engine import Engine


def commit(engine: Engine, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
    repository, _, tag = name.partition(":")
    try:
        # One commit, never retried: a second would be another image. Its configuration
        # is its base image's: whatever the container was given (a copy's password
        # verifier among it) is blanked, so no copy inherits another sandbox's.
        made = engine.call(
            engine.client.api.commit,
            container_id,
            repository=repository,
            tag=tag or "latest",
            conf={"Labels": labels, "Env": _own_env_blanked(engine, container_id)},
            pause=True,
            retry=False,
        )
    except docker.errors.NotFound as exc:
        raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
    image = engine.call(engine.client.api.inspect_image, made["Id"])
    parent_size = 0
    base = (engine.call(engine.client.api.inspect_container, container_id) or {}).get("Image")
    if base:
        parent_size = int(engine.call(engine.client.api.inspect_image, base).get("Size") or 0)
    return SnapshotImage(name, max(0, int(image.get("Size") or 0) - parent_size))


def _own_env_blanked(engine: Engine, container_id: str) -> list[str]:
    """``NAME=`` for every variable the container has beyond its image's (the engine
    merges a commit's variables over the container's by name: blank overrides)."""
    try:
        attrs = engine.call(engine.client.api.inspect_container, container_id)
    except docker.errors.NotFound as exc:
        raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
    base = engine.call(engine.client.api.inspect_image, attrs["Image"])
    inherited = set((base.get("Config") or {}).get("Env") or [])
    own = (attrs.get("Config") or {}).get("Env") or []
    return [f"{entry.partition('=')[0]}=" for entry in own if entry not in inherited]


def remove_snapshot(engine: Engine, image: str) -> bool:
    try:
        engine.call(engine.client.api.remove_image, image, noprune=False)
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # a container still uses it
            return False
        raise
    return True


def list_snapshots(engine: Engine, labels: dict[str, str]) -> list[str]:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    rows = engine.call(engine.client.api.images, filters=filters)
    return sorted(tag for row in rows for tag in row.get("RepoTags") or [])


def image_id(engine: Engine, image: str) -> str | None:
    try:
        return str(engine.call(engine.client.api.inspect_image, image)["Id"])
    except docker.errors.NotFound:
        return None


def image_labels(engine: Engine, image: str) -> dict[str, str]:
    try:
        attrs = engine.call(engine.client.api.inspect_image, image)
    except docker.errors.NotFound:
        return {}
    return dict((attrs.get("Config") or {}).get("Labels") or {})
