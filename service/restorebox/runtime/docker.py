"""The Docker implementation of ``Runtime``, on the docker SDK."""

from __future__ import annotations

import hashlib
import logging
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import docker
import docker.errors
import requests

from ..errors import ContainerVanished, EngineUnavailable, ImageUnavailable
from ..retry import engine_call
from .base import Container, ContainerSpec, ExecResult, Network, ProgressCallback, UploadFile

log = logging.getLogger("restorebox.runtime")

# Each sandbox gets a bridge network of its own, named after it, whose Linux bridge is
# "rbx<12 hex>": scripts/ensure-docker drops new connections from rbx+ bridges to the host
# and everything they would forward. Without IP masquerading a sandbox has no route out
# even without those rules, yet its port published on the host's loopback still works
# (docker-proxy connects from the host side).
BRIDGE_PREFIX = "rbx"
NETWORK_OPTIONS = {
    "com.docker.network.bridge.enable_ip_masquerade": "false",
    "com.docker.network.bridge.enable_icc": "false",
}
_TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_CHUNK = 1024 * 1024


class DockerRuntime:
    """Sandbox containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    if self._base_url:
                        self._client = docker.DockerClient(
                            base_url=self._base_url, timeout=self._timeout
                        )
                    else:
                        self._client = docker.from_env(timeout=self._timeout)
                except docker.errors.DockerException as exc:
                    raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc
            return self._client

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the engine, retrying transient connection errors, mapping them at the end."""
        try:
            for attempt in engine_call(_TRANSIENT):
                with attempt:
                    return fn(*args, **kwargs)
        except _TRANSIENT as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc
        except docker.errors.APIError as exc:
            if exc.status_code is None or exc.status_code >= 500:
                raise EngineUnavailable(
                    f"the Docker engine failed: {exc.explanation or exc}"
                ) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        # No retries: a health check must answer quickly, also during an outage.
        try:
            self.client.ping()
        except (docker.errors.DockerException, *_TRANSIENT) as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc

    def _create_network(self, spec: ContainerSpec) -> str:
        bridge = BRIDGE_PREFIX + hashlib.sha256(spec.name.encode()).hexdigest()[:12]
        try:
            self._call(
                self.client.networks.create,
                spec.name,
                driver="bridge",
                options={**NETWORK_OPTIONS, "com.docker.network.bridge.name": bridge},
                labels=spec.labels,
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # left over from an interrupted attempt: reuse it
                raise
        return spec.name

    # -- Runtime --------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> Container:
        network = self._create_network(spec)
        try:
            raw = self._call(
                self.client.containers.run,
                spec.image,
                command=list(spec.command) or None,
                name=spec.name,
                detach=True,
                environment=spec.env,
                labels=spec.labels,
                ports={"5432/tcp": (spec.publish_host, None)},
                network=network,
                user="postgres",
                mem_limit=spec.memory_bytes,
                memswap_limit=spec.memory_bytes,
                nano_cpus=int(spec.cpus * 1e9),
                pids_limit=spec.pids,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                shm_size="256m",
                read_only=False,
            )
        except (docker.errors.ImageNotFound, docker.errors.NotFound) as exc:
            self._remove_network(network)
            raise ImageUnavailable(
                f"image {spec.image} is not available and could not be pulled; build it with "
                f"scripts/build-images or set RESTOREBOX_IMAGES: {exc.explanation}"
            ) from exc
        except BaseException:
            self._remove_network(network)
            raise
        return self._wait_for_port(raw)

    def _wait_for_port(self, raw: Any) -> Container:
        # The engine fills in the published port once the container is running.
        deadline = time.monotonic() + 10
        while True:
            try:
                self._call(raw.reload)
            except docker.errors.NotFound as exc:
                raise ContainerVanished("the sandbox container was removed while starting") from exc
            container = _to_container(raw)
            if container.host_port is not None or not container.running:
                return container
            if time.monotonic() > deadline:
                return container
            time.sleep(0.05)

    def inspect(self, container_id: str) -> Container | None:
        try:
            raw = self._call(self.client.containers.get, container_id)
        except docker.errors.NotFound:
            return None
        return _to_container(raw)

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str = "postgres",
    ) -> ExecResult:
        api = self.client.api
        try:
            exec_id = self._call(
                api.exec_create, container_id, list(argv), environment=env or {}, user=user
            )["Id"]
            stdout, stderr = self._call(api.exec_start, exec_id, demux=True)
            code = self._call(api.exec_inspect, exec_id)["ExitCode"]
        except docker.errors.NotFound as exc:
            raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # container not running
                raise ContainerVanished(
                    f"container {container_id[:12]} is not running: {exc.explanation}"
                ) from exc
            raise
        return ExecResult(code if code is not None else -1, stdout or b"", stderr or b"")

    def copy_in(
        self,
        container_id: str,
        target_dir: str,
        files: Sequence[UploadFile],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        stream = _tar_stream(files, on_progress)
        ok = self._call(self.client.api.put_archive, container_id, target_dir, stream)
        if not ok:
            raise EngineUnavailable(f"could not copy files into {container_id[:12]}")

    def logs(self, container_id: str, tail: int = 100) -> str:
        try:
            data = self._call(self.client.api.logs, container_id, tail=tail)
        except docker.errors.NotFound:
            return ""
        return bytes(data).decode("utf-8", "replace")

    def remove(self, container_id: str) -> None:
        networks: list[str] = []
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
            networks = [
                name
                for name in (attrs.get("NetworkSettings") or {}).get("Networks") or {}
                if name not in ("bridge", "host", "none")
            ]
            self._call(self.client.api.remove_container, container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if not (exc.status_code == 409 and "already in progress" in str(exc)):
                raise
        for network in networks:
            self._remove_network(network)

    def _remove_network(self, name: str) -> None:
        try:
            self._call(self.client.api.remove_network, name)
        except docker.errors.NotFound:
            return

    def list_networks(self, labels: dict[str, str]) -> list[Network]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        raws = self._call(self.client.api.networks, filters=filters)
        networks = []
        for raw in raws:
            detail = self._call(self.client.api.inspect_network, raw["Id"])
            networks.append(
                Network(
                    id=raw["Id"],
                    name=raw["Name"],
                    labels=raw.get("Labels") or {},
                    containers=len(detail.get("Containers") or {}),
                )
            )
        return networks

    def remove_network(self, network_id: str) -> None:
        self._remove_network(network_id)

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        # The low-level listing: no per-container inspect that could race with a removal.
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = self._call(self.client.api.containers, all=True, filters=filters)
        containers = []
        for row in rows:
            port = next(
                (
                    p.get("PublicPort")
                    for p in row.get("Ports") or []
                    if p.get("PrivatePort") == 5432 and p.get("PublicPort")
                ),
                None,
            )
            containers.append(
                Container(
                    id=row["Id"],
                    name=(row.get("Names") or ["/"])[0].lstrip("/"),
                    labels=row.get("Labels") or {},
                    running=row.get("State") == "running",
                    host_port=int(port) if port else None,
                )
            )
        return containers


def _to_container(raw: Any) -> Container:
    attrs = raw.attrs
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    host_port = None
    for binding in ports.get("5432/tcp") or []:
        if binding.get("HostPort"):
            host_port = int(binding["HostPort"])
            break
    state = attrs.get("State") or {}
    return Container(
        id=attrs["Id"],
        name=(attrs.get("Name") or "").lstrip("/"),
        labels=(attrs.get("Config") or {}).get("Labels") or {},
        running=bool(state.get("Running")),
        host_port=host_port,
    )


def _tar_stream(
    files: Sequence[UploadFile], on_progress: ProgressCallback | None
) -> Iterator[bytes]:
    """A tar archive of ``files``, produced chunk by chunk so nothing is held in memory."""
    sent = 0
    now = int(time.time())
    made_dirs: set[str] = set()
    for upload in files:
        parts = upload.name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in made_dirs:
                made_dirs.add(directory)
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                yield info.tobuf(format=tarfile.PAX_FORMAT)
        info = tarfile.TarInfo(upload.name)
        info.size, info.mode, info.mtime = upload.size, 0o644, now
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        remaining = upload.size
        with upload.source.open("rb") as handle:
            while remaining > 0:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"{upload.source} shrank while it was being copied")
                remaining -= len(chunk)
                sent += len(chunk)
                yield chunk
                if on_progress is not None:
                    on_progress(sent)
        if upload.size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - upload.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
