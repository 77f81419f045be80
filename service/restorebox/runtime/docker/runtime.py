"""The Docker implementation of ``Runtime``, on the docker SDK: sandbox containers joined to
their anchors. The concerns live beside it: ``engine`` (the client and its calls), ``exec``
(commands inside), ``archives`` (files in), ``resets`` (containers made ahead), ``commit``
(snapshot images), ``anchors`` (networks and published ports)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors

from restorebox.errors import ContainerVanished, EngineUnavailable
from restorebox.runtime import labels as L
from restorebox.runtime.base import (
    DEFAULT_MAX_OUTPUT,
    Container,
    ContainerSpec,
    ExecResult,
    ProgressCallback,
    SnapshotImage,
    StorageUsage,
    StreamCallback,
    UploadFile,
)
from restorebox.runtime.docker import archives, commit, datadirs, egress
from restorebox.runtime.docker import exec as execs
from restorebox.runtime.docker.anchors import (
    ANCHOR_LABEL,
    JOINED,
    Anchor,
    Anchors,
    anchor_id_of,
    inspected_endpoint,
    is_standby,
    listed_endpoint,
    own_networks,
    remove_container,
    start_container,
)
from restorebox.runtime.docker.engine import Engine
from restorebox.runtime.docker.resets import Resets

log = logging.getLogger("restorebox.runtime")


class DockerRuntime:
    """Sandbox containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self.engine = Engine(base_url, timeout)
        self._anchors = Anchors(self.engine.call, self.engine.get_client, self.engine.ensure_image)
        self._resets = Resets(self.engine, self._anchors, self._create_filled)

    # -- plumbing -------------------------------------------------------------
    @property
    def client(self) -> Any:
        return self.engine.client

    def ping(self) -> None:
        self.engine.ping()

    def warm_up(self, template: ContainerSpec, count: int) -> None:
        self._anchors.warm_up(template, count)

    def cool_down(self, labels: dict[str, str]) -> None:
        self._anchors.cool_down(labels)

    # -- containers -------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> Container:
        engine = self.engine
        engine.last_start = time.monotonic()
        old = self._resets.replaced(spec.replaces) if spec.replaces else None
        anchor = old.anchor if old is not None else None
        name, stopping, prepared = spec.name, None, None
        if old is not None:
            name = f"{spec.name}-{secrets.token_hex(3)}"  # the old one keeps its name
            prepared = self._resets.take_prepared(spec, anchor)
            if old.running and anchor is None:  # from before anchors: its port must be free
                engine.kill(old.id)
            elif old.running:
                # An immediate stop, sent while the new container is made: the old server
                # lets go of the port within milliseconds (the new one waits for it if it
                # comes first: the image's entrypoint); its container is removed later.
                stopping = threading.Thread(
                    target=engine.quit, args=(old.id,), name="stop-old", daemon=True
                )
                stopping.start()
        if anchor is None:
            anchor = self._anchors.take(spec)
        container_id = prepared
        try:
            if container_id is None:
                container_id = self._create_filled(spec, anchor, name)
            if stopping is not None:
                stopping.join()
            try:
                start_container(engine.call, engine.client.api, container_id)
            except (docker.errors.NotFound, ContainerVanished):
                if prepared is None:
                    raise
                container_id = self._create_filled(spec, anchor, name)  # removed meanwhile
                start_container(engine.call, engine.client.api, container_id)
        except BaseException:
            self._remove_after_failed_start(container_id or name, anchor)
            raise
        finally:
            self._anchors.started(anchor)
        if old is not None:
            self._resets.delete_later(old.id)
        try:  # the anchor (and its port) is known: only the container is asked about
            attrs = engine.call(engine.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            raise ContainerVanished("the sandbox container was removed while starting") from None
        return _joined(_to_container(attrs), anchor)

    def prepare(self, spec: ContainerSpec) -> None:
        self._resets.prepare(spec)

    def _create_filled(self, spec: ContainerSpec, anchor: Anchor, name: str) -> str:
        """A created container with its secret files in place (the server reads them at
        start; they never appear in `docker inspect`)."""
        container_id = self._create_container(spec, anchor, name)
        if spec.secret_files:
            stream = archives.secret_tar(spec.secret_files)
            api = self.engine.client.api
            self.engine.call(api.put_archive, container_id, "/", stream, retry=False)
        return container_id

    def _create_container(self, spec: ContainerSpec, anchor: Anchor, name: str) -> str:
        """Create once; after a transient error, the name tells whether it happened."""
        engine = self.engine
        api = engine.client.api
        engine.ensure_image(spec.image)  # before its PGDATA is read for the data directory
        host_config = api.create_host_config(
            network_mode=JOINED + anchor.id,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            shm_size="256m",
            **datadirs.binds(engine, spec.image, spec.data_dir),
        )
        labels = dict(spec.labels)
        if spec.data_dir is not None:
            labels[datadirs.DATA_DIR_LABEL] = spec.data_dir
        try:
            created = engine.call(
                api.create_container,
                spec.image,
                command=list(spec.command) or None,
                name=name,
                environment=spec.env,
                labels=labels,
                user="postgres",
                host_config=host_config,
                retry=False,
            )
            return str(created["Id"])
        except EngineUnavailable:
            found = self.inspect(name)
            if found is None or found.labels.get(L.SANDBOX) != spec.labels.get(L.SANDBOX):
                raise
            log.warning("container create answered late; using it", extra={"container": name})
            return found.id

    def _remove_after_failed_start(self, container: str, anchor: Anchor) -> None:
        """After a failed start: the container (by id or name) and its anchor."""
        try:
            remove_container(self.engine.call, self.engine.client.api, container)
        except Exception:  # the caller's error is the one to report
            log.exception("cleanup after a failed start failed", extra={"container": container})
        try:
            self._anchors.release(anchor)
        except Exception:
            log.exception("anchor cleanup failed", extra={"network": anchor.network})

    def inspect(self, container_id: str) -> Container | None:
        try:
            attrs = self.engine.call(self.engine.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        container = _to_container(attrs)
        anchor_id = anchor_id_of(attrs)
        if anchor_id is None:
            return container
        anchor = self._anchors.inspect(anchor_id)
        return _joined(container, anchor)

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str = "postgres",
        on_stderr: StreamCallback | None = None,
        on_stdout: StreamCallback | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
        stdin: Iterable[bytes] | None = None,
    ) -> ExecResult:
        return execs.run(
            self.engine,
            container_id,
            argv,
            env=env,
            user=user,
            on_stderr=on_stderr,
            on_stdout=on_stdout,
            max_output=max_output,
            stdin=stdin,
        )

    def copy_in(
        self,
        container_id: str,
        target_dir: str,
        files: Sequence[UploadFile],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        archives.copy_in(self.engine, container_id, target_dir, files, on_progress)

    def logs(self, container_id: str, tail: int = 100) -> str:
        try:
            data = self.engine.call(self.engine.client.api.logs, container_id, tail=tail)
        except docker.errors.NotFound:
            return ""
        return bytes(data).decode("utf-8", "replace")

    def remove(self, container_id: str) -> None:
        engine = self.engine
        try:
            attrs = engine.call(engine.client.api.inspect_container, container_id)
            engine.call(engine.client.api.remove_container, container_id, force=True, v=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if not (exc.status_code == 409 and "already in progress" in str(exc)):
                raise
            return
        anchor_id = anchor_id_of(attrs)
        if anchor_id is not None and not self._others_on(anchor_id, attrs):
            anchor = self._anchors.inspect(anchor_id)
            if anchor is not None:
                self._anchors.release(anchor)
        for network in own_networks(attrs):  # a container from before anchors
            self._anchors.remove_network(network, settle=True)

    def _others_on(self, anchor_id: str, attrs: dict[str, Any]) -> bool:
        """Whether another container of the sandbox still uses the anchor (a reset's new
        container, while the reconciler removes an old one left behind). Containers that
        only wait there (a prepared one never started, a replaced one not deleted yet)
        go with this one."""
        sandbox = ((attrs.get("Config") or {}).get("Labels") or {}).get(L.SANDBOX)
        label = f"{L.SANDBOX}={sandbox}" if sandbox else f"{L.MANAGED}=true"
        api = self.engine.client.api
        rows = self.engine.call(api.containers, all=True, filters={"label": [label]})
        others = [r for r in rows if anchor_id_of(r) == anchor_id and r["Id"] != attrs["Id"]]
        remaining = False
        for row in others:
            if self._resets.waiting(row):
                self._resets.forget(str(row["Id"]))
                self.engine.remove_quietly(str(row["Id"]))
            else:
                remaining = True
        return remaining

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        # The low-level listing: no per-container inspect that could race with a removal.
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = self.engine.call(self.engine.client.api.containers, all=True, filters=filters)
        anchors: dict[str, Anchor] | None = None
        containers = []
        for row in rows:
            if (row.get("Labels") or {}).get(ANCHOR_LABEL) == "true" or is_standby(row):
                continue  # a sandbox's anchor, or a reset's container not started yet
            container = Container(
                id=row["Id"],
                name=(row.get("Names") or ["/"])[0].lstrip("/"),
                labels=row.get("Labels") or {},
                # Paused is alive: a snapshot's commit pauses it for a while.
                running=row.get("State") in ("running", "paused"),
                endpoint=listed_endpoint(row),
            )
            anchor_id = anchor_id_of(row)
            if anchor_id is not None:
                anchors = self._anchors.endpoints() if anchors is None else anchors
                container = _joined(container, anchors.get(anchor_id))
            containers.append(container)
        return containers

    def storage_usage(self, snapshots: Sequence[str]) -> StorageUsage | None:
        return None  # image sizes are all the engine says

    # -- data directories from the host (restorebox.storage) -----------------------
    def cannot_mount_host_paths(self) -> str | None:
        return datadirs.cannot_mount(self.engine)

    def ensure_image(self, image: str) -> None:
        self.engine.ensure_image(image)

    def export_data_dir(self, image: str, target: Path) -> None:
        datadirs.export(self.engine, image, target)

    def freeze(self, container_id: str) -> None:
        datadirs.freeze(self.engine, container_id)

    def thaw(self, container_id: str) -> None:
        datadirs.thaw(self.engine, container_id)

    def data_dirs(self, labels: dict[str, str]) -> dict[str, str]:
        return datadirs.data_dirs(self.engine, labels)

    def check_isolation(self, template: ContainerSpec, repair: bool) -> str | None:
        return egress.check(self.engine, template, repair)

    def disk_usage(self, labels: dict[str, str]) -> dict[str, int]:
        # One listing with sizes (the engine walks each container's own layer).
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        api = self.engine.client.api
        rows = self.engine.call(api.containers, all=True, size=True, filters=filters)
        return {str(row["Id"]): int(row.get("SizeRw") or 0) for row in rows}

    def list_isolation(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        return self._anchors.networks(labels)

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        """Anchors and networks of sandboxes that are neither kept nor used."""
        return self._anchors.prune(labels, keep)

    # -- snapshot images ----------------------------------------------------------
    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        return commit.commit(self.engine, container_id, name, labels)

    def remove_snapshot(self, image: str) -> bool:
        return commit.remove_snapshot(self.engine, image)

    def list_snapshots(self, labels: dict[str, str]) -> list[str]:
        return commit.list_snapshots(self.engine, labels)

    def image_id(self, image: str) -> str | None:
        return commit.image_id(self.engine, image)

    def image_labels(self, image: str) -> dict[str, str]:
        return commit.image_labels(self.engine, image)


def _joined(container: Container, anchor: Anchor | None) -> Container:
    """A container reached through its anchor: running only while the anchor runs."""
    running = container.running and anchor is not None and anchor.running
    endpoint = anchor.endpoint if running and anchor is not None else None
    return replace(container, running=running, endpoint=endpoint)


def _to_container(attrs: dict[str, Any]) -> Container:
    state = attrs.get("State") or {}
    return Container(
        id=attrs["Id"],
        name=(attrs.get("Name") or "").lstrip("/"),
        labels=(attrs.get("Config") or {}).get("Labels") or {},
        running=bool(state.get("Running")),
        endpoint=inspected_endpoint(attrs),
    )
