"""The Docker implementation of ``Runtime``, on the docker SDK."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import docker
import docker.errors
import docker.utils.socket
import requests
import urllib3

from ..errors import ContainerVanished, EngineUnavailable, ImageUnavailable
from ..retry import engine_call
from . import labels as L
from .base import (
    DEFAULT_MAX_OUTPUT,
    Container,
    ContainerSpec,
    Endpoint,
    ExecResult,
    ProgressCallback,
    SnapshotImage,
    StreamCallback,
    UploadFile,
)
from .network_pool import NetworkPool

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
POOL_LABEL = "restorebox.pool"


class DockerRuntime:
    """Sandbox containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()
        self._pools: dict[str, NetworkPool] = {}  # instance -> networks made ahead
        self._kept: dict[str, str] = {}  # container name -> its network, over a reset

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

    def _call(self, fn: Any, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        """Call the engine and map its failures. ``retry`` (reads, idempotent writes,
        creates guarded by a name check) retries transient connection errors; a call that
        must not happen twice (starting an exec, streaming a one-shot upload) is made once."""
        try:
            if not retry:
                return fn(*args, **kwargs)
            for attempt in engine_call(_TRANSIENT):
                with attempt:
                    return fn(*args, **kwargs)
        except _TRANSIENT as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc
        except docker.errors.NotFound:
            raise
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
        """The sandbox's own network: the one it had before a reset, one made ahead, or a
        new one named after it."""
        with self._lock:
            kept = self._kept.pop(spec.name, None)
            pool = self._pools.get(spec.labels.get(L.INSTANCE, ""))
        if kept is not None:
            return kept
        pooled = pool.take() if pool is not None else None
        if pooled is not None:
            return pooled
        return self._make_network(spec.name, spec.labels)

    def _make_network(self, name: str, labels: dict[str, str]) -> str:
        bridge = BRIDGE_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:12]
        try:
            self._call(
                self.client.networks.create,
                name,
                driver="bridge",
                options={**NETWORK_OPTIONS, "com.docker.network.bridge.name": bridge},
                labels=labels,
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # left over from an interrupted attempt: reuse it
                raise
        return name

    def warm_up(self, labels: dict[str, str], networks: int) -> None:
        instance = labels.get(L.INSTANCE, "")
        if networks <= 0:
            return
        with self._lock:
            if instance in self._pools:
                return

        def make(name: str) -> None:
            self._make_network(name, {**labels, POOL_LABEL: "true"})

        pool = NetworkPool(make, self._remove_network, networks)
        with self._lock:
            self._pools[instance] = pool

    def cool_down(self, labels: dict[str, str]) -> None:
        with self._lock:
            pool = self._pools.pop(labels.get(L.INSTANCE, ""), None)
        if pool is not None:
            pool.close()

    # -- Runtime --------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> Container:
        network = self._create_network(spec)
        try:
            container_id = self._create_container(spec, network)
            if spec.secret_files:
                # Into the created, not yet started, container: the server reads them
                # at start; they never appear in `docker inspect`.
                stream = _secret_tar(spec.secret_files)
                self._call(self.client.api.put_archive, container_id, "/", stream, retry=False)
            self._call(self.client.api.start, container_id)  # starting twice is a no-op
        except (docker.errors.ImageNotFound, docker.errors.NotFound) as exc:
            self._remove_quietly(spec.name, network)
            raise ImageUnavailable(
                f"image {spec.image} is not available and could not be pulled; build it with "
                f"scripts/build-images or set RESTOREBOX_IMAGES: {exc.explanation}"
            ) from exc
        except BaseException:
            self._remove_quietly(spec.name, network)
            raise
        return self._wait_for_port(container_id, spec.publish_host)

    def _create_container(self, spec: ContainerSpec, network: str) -> str:
        """Create once; after a transient error, the name tells whether it happened."""
        api = self.client.api
        host_config = api.create_host_config(
            port_bindings={5432: (spec.publish_host, spec.host_port)},
            network_mode=network,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            shm_size="256m",
        )
        try:
            self._ensure_image(spec.image)
            created = self._call(
                api.create_container,
                spec.image,
                command=list(spec.command) or None,
                name=spec.name,
                environment=spec.env,
                labels=spec.labels,
                ports=[5432],
                user="postgres",
                host_config=host_config,
                retry=False,
            )
            return str(created["Id"])
        except EngineUnavailable:
            found = self.inspect(spec.name)
            if found is None or found.labels.get("restorebox.sandbox") != spec.labels.get(
                "restorebox.sandbox"
            ):
                raise
            log.warning("container create answered late; using it", extra={"container": spec.name})
            return found.id

    def _ensure_image(self, image: str) -> None:
        try:
            self._call(self.client.api.inspect_image, image)
        except docker.errors.ImageNotFound:
            self._call(self.client.images.pull, image)

    def _remove_quietly(self, name: str, network: str) -> None:
        try:
            self.remove(name)
        except Exception:  # the caller's error is the one to report
            log.exception("cleanup after a failed start failed", extra={"container": name})
        try:
            self._remove_network(network)
        except Exception:
            log.exception("network cleanup failed", extra={"network": network})

    def _wait_for_port(self, container_id: str, publish_host: str) -> Container:
        # The engine fills in the published port once the container is running.
        deadline = time.monotonic() + 10
        while True:
            container = self.inspect(container_id)
            if container is None:
                raise ContainerVanished("the sandbox container was removed while starting")
            if container.endpoint is not None or not container.running:
                return container
            if time.monotonic() > deadline:
                return container
            time.sleep(0.05)

    def inspect(self, container_id: str) -> Container | None:
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        return _to_container(attrs)

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str = "postgres",
        on_stderr: StreamCallback | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
        stdin: Iterable[bytes] | None = None,
    ) -> ExecResult:
        api = self.client.api
        out, err = _Capped(max_output), _Capped(max_output)
        try:
            exec_id = self._call(
                api.exec_create,
                container_id,
                list(argv),
                environment=env or {},
                user=user,
                stdin=stdin is not None,
            )["Id"]
            # Streamed, never buffered whole: a command printing gigabytes costs the
            # service at most max_output bytes per stream.
            if stdin is None:
                chunks = self._call(api.exec_start, exec_id, stream=True, demux=True, retry=False)
            else:
                chunks = self._exec_feeding(exec_id, stdin)
            for stdout, stderr in chunks:
                if stdout:
                    out.add(stdout)
                if stderr:
                    err.add(stderr)
                    if on_stderr is not None:
                        on_stderr(stderr)
            code = self._call(api.exec_inspect, exec_id)["ExitCode"]
        except docker.errors.NotFound as exc:
            raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # container not running
                raise ContainerVanished(
                    f"container {container_id[:12]} is not running: {exc.explanation}"
                ) from exc
            raise
        except (*_TRANSIENT, OSError, urllib3.exceptions.HTTPError) as exc:
            # The engine went away while the command ran (restart, crash).
            raise EngineUnavailable(f"the Docker engine stopped answering: {exc}") from exc
        return ExecResult(
            code if code is not None else -1,
            out.data(),
            err.data(),
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
        )

    def _exec_feeding(
        self, exec_id: str, stdin: Iterable[bytes]
    ) -> Iterator[tuple[bytes | None, bytes | None]]:
        """Start an exec attached to a raw socket: a thread writes ``stdin`` and then
        closes the write side (the command sees end of input), while this generator
        yields the command's (stdout, stderr) frames."""
        sock = self._call(self.client.api.exec_start, exec_id, socket=True, retry=False)
        raw: socket.socket = getattr(sock, "_sock", sock)
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                for chunk in stdin:
                    raw.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the command stopped reading (it exited): its exit code says why
            except BaseException as exc:  # re-raised by the reader below
                failure.append(exc)
            finally:
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=feed, name="exec-stdin", daemon=True)
        writer.start()
        try:
            frames = docker.utils.socket.frames_iter(sock, tty=False)  # type: ignore[no-untyped-call]
            for stream, data in frames:
                if stream == docker.utils.socket.STDOUT:
                    yield data, None
                elif stream == docker.utils.socket.STDERR:
                    yield None, data
        finally:
            writer.join(timeout=5)
            sock.close()
        if failure:
            raise failure[0]

    def copy_in(
        self,
        container_id: str,
        target_dir: str,
        files: Sequence[UploadFile],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        stream = _tar_stream(files, on_progress)
        ok = self._call(self.client.api.put_archive, container_id, target_dir, stream, retry=False)
        if not ok:
            raise EngineUnavailable(f"could not copy files into {container_id[:12]}")

    def logs(self, container_id: str, tail: int = 100) -> str:
        try:
            data = self._call(self.client.api.logs, container_id, tail=tail)
        except docker.errors.NotFound:
            return ""
        return bytes(data).decode("utf-8", "replace")

    def remove(self, container_id: str, *, keep_isolation: bool = False) -> None:
        if keep_isolation:
            self._remove_for_restart(container_id)
            return
        networks: list[str] = []
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
            networks = _own_networks(attrs)
            self._call(self.client.api.remove_container, container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if not (exc.status_code == 409 and "already in progress" in str(exc)):
                raise
        for network in networks:
            self._remove_network(network, settle=True)

    def _remove_for_restart(self, container_id: str) -> None:
        """Out of the way at once for a new container of the same sandbox (a reset): the
        old one is renamed (its name is free) and killed (its port is free); its network
        is kept for the next start; deleting its files happens on a thread. Should the
        service stop first, the reconciler removes it (no record names it)."""
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return
        name = str(attrs.get("Name", "")).lstrip("/")
        running = bool((attrs.get("State") or {}).get("Running"))
        networks = _own_networks(attrs)
        try:
            if "-old-" not in name:
                self._call(
                    self.client.api.rename, container_id, f"{name}-old-{secrets.token_hex(3)}"
                )
            if running:  # stopped at once (SIGKILL), and its published port released
                self._call(self.client.api.stop, container_id, timeout=0)
        except docker.errors.NotFound:
            return
        if networks and "-old-" not in name:
            with self._lock:  # the next start of this sandbox goes back onto it
                self._kept[name] = networks[0]

        def delete() -> None:
            try:
                self._call(self.client.api.remove_container, container_id, force=True, v=True)
            except Exception:  # the reconciler removes what is left
                log.warning("could not delete a reset sandbox's old container", exc_info=True)

        threading.Thread(target=delete, name="remove-old", daemon=True).start()

    def _remove_network(self, name: str, settle: bool = False) -> None:
        """Remove a network. With ``settle``, wait briefly for the endpoint of a container
        just removed to go (the engine releases it a moment later); past that, or when
        another removal holds it, the reconciler's prune removes it once it is empty."""
        deadline = time.monotonic() + (3.0 if settle else 0.0)
        while True:
            try:
                self._call(self.client.api.remove_network, name)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code not in (403, 409):
                    raise
                if time.monotonic() >= deadline:
                    log.debug("network still in use; left for pruning", extra={"network": name})
                    return
            time.sleep(0.1)

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        repository, _, tag = name.partition(":")
        try:
            # One commit, never retried: a second would be another image.
            made = self._call(
                self.client.api.commit,
                container_id,
                repository=repository,
                tag=tag or "latest",
                conf={"Labels": labels},
                pause=True,
                retry=False,
            )
        except docker.errors.NotFound as exc:
            raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
        image = self._call(self.client.api.inspect_image, made["Id"])
        parent_size = 0
        base = (self._call(self.client.api.inspect_container, container_id) or {}).get("Image")
        if base:
            parent_size = int(self._call(self.client.api.inspect_image, base).get("Size") or 0)
        return SnapshotImage(name, max(0, int(image.get("Size") or 0) - parent_size))

    def remove_snapshot(self, image: str) -> bool:
        try:
            self._call(self.client.api.remove_image, image, noprune=False)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # a container still uses it
                return False
            raise
        return True

    def list_snapshots(self, labels: dict[str, str]) -> list[str]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = self._call(self.client.api.images, filters=filters)
        return sorted(tag for row in rows for tag in row.get("RepoTags") or [])

    def image_id(self, image: str) -> str | None:
        try:
            return str(self._call(self.client.api.inspect_image, image)["Id"])
        except docker.errors.NotFound:
            return None

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        """Networks of sandboxes that are neither kept nor used by any container."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        removed = []
        with self._lock:
            reserved = set(self._kept.values()).union(
                *(pool.reserved() for pool in self._pools.values())
            )
        for raw in self._call(self.client.api.networks, filters=filters):
            if (raw.get("Labels") or {}).get("restorebox.sandbox") in keep:
                continue
            if raw.get("Name") in reserved:
                continue
            try:
                detail = self._call(self.client.api.inspect_network, raw["Id"])
            except docker.errors.NotFound:
                continue
            if detail.get("Containers"):
                continue
            self._remove_network(raw["Id"])
            removed.append(str(raw["Name"]))
        return removed

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        # The low-level listing: no per-container inspect that could race with a removal.
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = self._call(self.client.api.containers, all=True, filters=filters)
        containers = []
        for row in rows:
            binding = next(
                (
                    p
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
                    endpoint=_endpoint(binding.get("IP"), binding["PublicPort"])
                    if binding
                    else None,
                )
            )
        return containers


def _own_networks(attrs: dict[str, Any]) -> list[str]:
    """The networks restorebox made for a container (not the engine's defaults)."""
    attached = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return [name for name in attached if name not in ("bridge", "host", "none")]


def _endpoint(host_ip: str | None, port: object) -> Endpoint:
    """A published port as the service dials it: a wildcard binding is reached on loopback."""
    host = host_ip if host_ip and host_ip not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return Endpoint(host, int(str(port)))


def _to_container(attrs: dict[str, Any]) -> Container:
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    endpoint = None
    for binding in ports.get("5432/tcp") or []:
        if binding.get("HostPort"):
            endpoint = _endpoint(binding.get("HostIp"), binding["HostPort"])
            break
    state = attrs.get("State") or {}
    return Container(
        id=attrs["Id"],
        name=(attrs.get("Name") or "").lstrip("/"),
        labels=(attrs.get("Config") or {}).get("Labels") or {},
        running=bool(state.get("Running")),
        endpoint=endpoint,
    )


class _Capped:
    """Keeps the first ``limit`` bytes of a stream and notes whether more came."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = io.BytesIO()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - self.buffer.tell()
        if room > 0:
            self.buffer.write(chunk[:room])
        if len(chunk) > room:
            self.truncated = True

    def data(self) -> bytes:
        return self.buffer.getvalue()


def _secret_tar(files: dict[str, bytes]) -> bytes:
    """A small in-memory tar of secret files (absolute paths), readable by the server."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for path, content in files.items():
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode = len(content), 0o444
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


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
        with upload.open() as handle:
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
