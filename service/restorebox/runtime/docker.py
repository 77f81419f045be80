"""The Docker implementation of ``Runtime``, on the docker SDK."""

from __future__ import annotations

import contextlib
import io
import logging
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
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
    ExecResult,
    ProgressCallback,
    SnapshotImage,
    StreamCallback,
    UploadFile,
)
from .docker_anchors import (
    ANCHOR_LABEL,
    JOINED,
    STANDBY_LABEL,
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

log = logging.getLogger("restorebox.runtime")

_TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_CHUNK = 1024 * 1024
DELETE_OLD_AFTER = 2.0  # seconds without a start: deleting competes with starts for CPU
PREPARE_AFTER = 1.0  # seconds without a start before a reset's container is made ahead


class DockerRuntime:
    """Sandbox containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()
        self._last_start = 0.0  # when a start began (background work waits for quiet)
        self._prepared: dict[str, _Prepared] = {}  # sandbox container name -> its next
        self._retired: set[str] = set()  # reset containers replaced, deleted soon
        self._anchors = Anchors(self._call, lambda: self.client, self._ensure_image)

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

    def warm_up(self, template: ContainerSpec, count: int) -> None:
        self._anchors.warm_up(template, count)

    def cool_down(self, labels: dict[str, str]) -> None:
        self._anchors.cool_down(labels)

    # -- Runtime --------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> Container:
        self._last_start = time.monotonic()
        old = self._replaced(spec.replaces) if spec.replaces else None
        anchor = old.anchor if old is not None else None
        name, stopping, prepared = spec.name, None, None
        if old is not None:
            name = f"{spec.name}-{secrets.token_hex(3)}"  # the old one keeps its name
            prepared = self._take_prepared(spec, anchor)
            if old.running and anchor is None:  # from before anchors: its port must be free
                self._kill(old.id)
            elif old.running:
                # An immediate stop, sent while the new container is made: the old server
                # lets go of the port within milliseconds (the new one waits for it if it
                # comes first: the image's entrypoint); its container is removed later.
                stopping = threading.Thread(
                    target=self._quit, args=(old.id,), name="stop-old", daemon=True
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
                start_container(self._call, self.client.api, container_id)
            except (docker.errors.NotFound, ContainerVanished):
                if prepared is None:
                    raise
                container_id = self._create_filled(spec, anchor, name)  # removed meanwhile
                start_container(self._call, self.client.api, container_id)
        except BaseException:
            self._remove_quietly(container_id or name, anchor)
            raise
        finally:
            self._anchors.started(anchor)
        if old is not None:
            self._delete_later(old.id)
        try:  # the anchor (and its port) is known: only the container is asked about
            attrs = self._call(self.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            raise ContainerVanished("the sandbox container was removed while starting") from None
        return _joined(_to_container(attrs), anchor)

    def _replaced(self, container_id: str) -> _Replaced | None:
        """A reset's old container, and its anchor (port included) for the new one."""
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        anchor_id = anchor_id_of(attrs)
        anchor = self._anchors.inspect(anchor_id) if anchor_id else None
        running = bool((attrs.get("State") or {}).get("Running"))
        if anchor is None or not anchor.running:
            return _Replaced(str(attrs["Id"]), None, running)
        return _Replaced(str(attrs["Id"]), self._anchors.hold(anchor), running)

    def _kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Killed at once (its data is thrown away). SIGKILL is waited for (the engine
        answers once the container has exited); other signals are only sent."""
        api = self.client.api
        try:
            self._call(api.kill, container_id, signal=signal)
            if signal == "SIGKILL":
                self._call(api.wait, container_id, timeout=30)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: not running
                raise

    def _quit(self, container_id: str) -> None:
        """SIGQUIT, passed on to the server by the image's entrypoint: an immediate stop."""
        try:
            self._kill(container_id, "SIGQUIT")
        except Exception:  # the new server waits for the port, then the reset fails clearly
            log.warning("could not stop a reset's old container", exc_info=True)

    def _delete_later(self, container_id: str) -> None:
        """Delete a reset's old container on a thread, once no start has begun for a
        moment; the reconciler removes it if the service stops first (no record names
        it)."""

        with self._lock:
            self._retired.add(container_id)

        def delete() -> None:
            time.sleep(DELETE_OLD_AFTER)
            self._wait_for_quiet(DELETE_OLD_AFTER)
            self._remove_container_quietly(container_id)
            with self._lock:
                self._retired.discard(container_id)

        threading.Thread(target=delete, name="remove-old", daemon=True).start()

    def _create_filled(self, spec: ContainerSpec, anchor: Anchor, name: str) -> str:
        """A created container with its secret files in place (the server reads them at
        start; they never appear in `docker inspect`)."""
        container_id = self._create_container(spec, anchor, name)
        if spec.secret_files:
            stream = _secret_tar(spec.secret_files)
            self._call(self.client.api.put_archive, container_id, "/", stream, retry=False)
        return container_id

    def prepare(self, spec: ContainerSpec) -> None:
        """A reset's container, created (not started) on the sandbox's anchor once the
        engine is quiet: the reset then only starts it. Kept out of listings until it
        runs; removed with the sandbox."""
        if spec.replaces is None:
            return
        current = spec.replaces

        def make() -> None:
            self._wait_for_quiet(PREPARE_AFTER)
            try:
                attrs = self._call(self.client.api.inspect_container, current)
                anchor_id = anchor_id_of(attrs)
                if anchor_id is None or not (attrs.get("State") or {}).get("Running"):
                    return
                standby = replace(spec, labels={**spec.labels, STANDBY_LABEL: "true"})
                name = f"{spec.name}-{secrets.token_hex(3)}"
                made = self._create_filled(standby, Anchor(anchor_id, "", None), name)
            except Exception:  # only a head start lost: the reset makes its own
                log.debug("could not prepare a reset's container", exc_info=True)
                return
            with self._lock:
                previous = self._prepared.pop(spec.name, None)
                self._prepared[spec.name] = _Prepared(replace(spec, replaces=None), made, anchor_id)
            if previous is not None:
                self._remove_container_quietly(previous.id)

        threading.Thread(target=make, name="prepare", daemon=True).start()

    def _take_prepared(self, spec: ContainerSpec, anchor: Anchor | None) -> str | None:
        """The container prepared for exactly this start, on this anchor, if any."""
        with self._lock:
            prepared = self._prepared.pop(spec.name, None)
        if prepared is None:
            return None
        same = prepared.spec == replace(spec, replaces=None)
        if anchor is None or prepared.anchor_id != anchor.id or not same:
            threading.Thread(
                target=self._remove_container_quietly, args=(prepared.id,), daemon=True
            ).start()
            return None
        return prepared.id

    def _wait_for_quiet(self, seconds: float) -> None:
        """Until no start has begun for ``seconds``: background work waits for bursts."""
        while time.monotonic() - self._last_start < seconds:
            time.sleep(0.2)

    def _remove_container_quietly(self, container_id: str) -> None:
        try:
            remove_container(self._call, self.client.api, container_id)
        except Exception:  # left over: removed or pruned with its sandbox
            log.warning("could not remove a container", exc_info=True)

    def _create_container(self, spec: ContainerSpec, anchor: Anchor, name: str) -> str:
        """Create once; after a transient error, the name tells whether it happened."""
        api = self.client.api
        host_config = api.create_host_config(
            network_mode=JOINED + anchor.id,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            shm_size="256m",
        )
        self._ensure_image(spec.image)
        try:
            created = self._call(
                api.create_container,
                spec.image,
                command=list(spec.command) or None,
                name=name,
                environment=spec.env,
                labels=spec.labels,
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

    def _ensure_image(self, image: str) -> None:
        try:
            self._call(self.client.api.inspect_image, image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self._call(self.client.images.pull, image)
        except (docker.errors.NotFound, docker.errors.APIError) as exc:
            raise ImageUnavailable(
                f"image {image} is not available and could not be pulled; build it with "
                f"scripts/build-images or set RESTOREBOX_IMAGES: {exc}"
            ) from exc

    def _remove_quietly(self, container: str, anchor: Anchor) -> None:
        """After a failed start: the container (by id or name) and its anchor."""
        try:
            remove_container(self._call, self.client.api, container)
        except Exception:  # the caller's error is the one to report
            log.exception("cleanup after a failed start failed", extra={"container": container})
        try:
            self._anchors.release(anchor)
        except Exception:
            log.exception("anchor cleanup failed", extra={"network": anchor.network})

    def inspect(self, container_id: str) -> Container | None:
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
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

    def remove(self, container_id: str) -> None:
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
            self._call(self.client.api.remove_container, container_id, force=True, v=True)
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
        rows = self._call(self.client.api.containers, all=True, filters={"label": [label]})
        others = [r for r in rows if anchor_id_of(r) == anchor_id and r["Id"] != attrs["Id"]]
        with self._lock:
            retired = set(self._retired)
        remaining = False
        for row in others:
            if is_standby(row) or row["Id"] in retired:
                with self._lock:
                    for name, prepared in list(self._prepared.items()):
                        if prepared.id == row["Id"]:
                            del self._prepared[name]
                self._remove_container_quietly(str(row["Id"]))
            else:
                remaining = True
        return remaining

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        repository, _, tag = name.partition(":")
        try:
            # One commit, never retried: a second would be another image. Its configuration
            # is its base image's: whatever the container was given (a copy's password
            # verifier among it) is blanked, so no copy inherits another sandbox's.
            made = self._call(
                self.client.api.commit,
                container_id,
                repository=repository,
                tag=tag or "latest",
                conf={"Labels": labels, "Env": self._own_env_blanked(container_id)},
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

    def _own_env_blanked(self, container_id: str) -> list[str]:
        """``NAME=`` for every variable the container has beyond its image's (the engine
        merges a commit's variables over the container's by name: blank overrides)."""
        try:
            attrs = self._call(self.client.api.inspect_container, container_id)
        except docker.errors.NotFound as exc:
            raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
        base = self._call(self.client.api.inspect_image, attrs["Image"])
        inherited = set((base.get("Config") or {}).get("Env") or [])
        own = (attrs.get("Config") or {}).get("Env") or []
        return [f"{entry.partition('=')[0]}=" for entry in own if entry not in inherited]

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

    def image_labels(self, image: str) -> dict[str, str]:
        try:
            attrs = self._call(self.client.api.inspect_image, image)
        except docker.errors.NotFound:
            return {}
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        """Anchors and networks of sandboxes that are neither kept nor used."""
        return self._anchors.prune(labels, keep)

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        # The low-level listing: no per-container inspect that could race with a removal.
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = self._call(self.client.api.containers, all=True, filters=filters)
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


@dataclass(frozen=True)
class _Prepared:
    """A reset's container made ahead: for which spec, on which anchor."""

    spec: ContainerSpec
    id: str
    anchor_id: str


@dataclass(frozen=True)
class _Replaced:
    """A reset's old container: its anchor (None if it had none or it died)."""

    id: str
    anchor: Anchor | None
    running: bool


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
    """A small in-memory tar of secret files (absolute paths), readable by the server and
    deletable by it once read (its entrypoint does, before any snapshot can be taken)."""
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
                    # The file's own folder lets the server's user delete it (once read)
                    # without listing it; the folders above are as usual.
                    leaf = depth == len(parts) - 1
                    info.type, info.mode = tarfile.DIRTYPE, 0o733 if leaf else 0o755
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
