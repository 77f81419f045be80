"""Data directories from the host on Docker: bind-mounted over the image's PGDATA, exported
from an image once (the cluster its build initialised), and a container frozen while its
directory is cloned."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import docker.errors

from restorebox.errors import ContainerVanished, ImageUnavailable
from restorebox.runtime import labels as L
from restorebox.runtime.docker.engine import Engine

DATA_DIR_LABEL = L.DATA_DIR
DEFAULT_PGDATA = "/var/lib/postgresql/data"


def cannot_mount(engine: Engine) -> str | None:
    """A remote engine (tcp://, ssh://) cannot see this host's directories."""
    where = engine.base_url or os.environ.get("DOCKER_HOST", "")
    if where and not where.startswith("unix://"):
        return f"the Docker engine at {where} is not on this host"
    return None


@functools.lru_cache(maxsize=32)
def _pgdata_of(engine: Engine, image_id: str) -> str:
    attrs = engine.call(engine.client.api.inspect_image, image_id)
    for entry in (attrs.get("Config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name == "PGDATA" and value:
            return str(value)
    return DEFAULT_PGDATA


def pgdata(engine: Engine, image: str) -> str:
    """Where the image's server keeps its data (its PGDATA; the official images' default)."""
    try:
        image_id = str(engine.call(engine.client.api.inspect_image, image)["Id"])
    except docker.errors.NotFound as exc:
        raise ImageUnavailable(f"image {image} is not available") from exc
    return _pgdata_of(engine, image_id)


def binds(engine: Engine, image: str, data_dir: str | None) -> dict[str, Any]:
    if data_dir is None:
        return {}
    return {"binds": {data_dir: {"bind": pgdata(engine, image), "mode": "rw"}}}


def export(engine: Engine, image: str, target: Path) -> None:
    """The image's data directory, streamed out of a created (never started) container and
    unpacked with its numeric owners into ``target``."""
    engine.ensure_image(image)
    api = engine.client.api
    source = pgdata(engine, image)
    created = engine.call(api.create_container, image, command=["true"], retry=False)
    container_id = str(created["Id"])
    try:
        stream, _ = engine.call(api.get_archive, container_id, source)
        unpack = subprocess.Popen(
            [
                "tar",
                "-x",
                "--numeric-owner",
                "--same-permissions",
                "-C",
                str(target),
                "--strip-components=1",
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert unpack.stdin is not None
        try:
            for chunk in stream:
                unpack.stdin.write(chunk)
        finally:
            unpack.stdin.close()
        assert unpack.stderr is not None
        err = unpack.stderr.read()
        unpack.wait(timeout=300)
        if unpack.returncode != 0:
            raise OSError(f"unpacking {image}'s data directory failed: {err.decode()[-300:]}")
    finally:
        engine.remove_quietly(container_id)
    owner = (target / "PG_VERSION").stat()
    os.chown(target, owner.st_uid, owner.st_gid)
    os.chmod(target, 0o700)


def freeze(engine: Engine, container_id: str) -> None:
    try:
        engine.call(engine.client.api.pause, container_id, retry=False)
    except docker.errors.NotFound as exc:
        raise ContainerVanished(f"container {container_id[:12]} is gone") from exc


def thaw(engine: Engine, container_id: str) -> None:
    try:
        engine.call(engine.client.api.unpause, container_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # not paused
            raise


def data_dirs(engine: Engine, labels: dict[str, str]) -> dict[str, str]:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()] + [DATA_DIR_LABEL]}
    rows = engine.call(engine.client.api.containers, all=True, filters=filters)
    return {str(row["Id"]): (row.get("Labels") or {})[DATA_DIR_LABEL] for row in rows}
