"""What restorebox needs from a container engine, and nothing more.

The protocol speaks of sandboxes, endpoints, files and labels, never of an engine's own
notions (ports, networks, firewall rules): isolation and garbage collection by label are
each runtime's business. ``docs/kubernetes.md`` maps it onto a second engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable


@dataclass(frozen=True)
class Endpoint:
    """Where the service (and users) reach a sandbox's PostgreSQL."""

    host: str
    port: int


@dataclass(frozen=True)
class ContainerSpec:
    """A PostgreSQL sandbox to start. ``secret_files`` (path -> content) are in place
    before the server starts and never appear in the container's configuration."""

    image: str
    name: str
    env: dict[str, str]
    labels: dict[str, str]
    publish_host: str = "127.0.0.1"
    memory_bytes: int = 2 * 1024**3
    cpus: float = 2.0
    pids: int = 1024
    command: Sequence[str] = ()
    secret_files: dict[str, bytes] = field(default_factory=dict, repr=False)
    # A reset: the sandbox's current container, whose endpoint this one takes over (it is
    # stopped just before this one starts, and deleted after).
    replaces: str | None = None
    host_port: int | None = None  # when the endpoint must be made anew, on this port
    # A host directory mounted as the server's data directory (the image's PGDATA), from
    # the store (restorebox.storage); None: the image's own, in the container's layer.
    data_dir: str | None = None


# What a snapshot's handle is called (``restorebox/snapshot:<id>``): an image on the
# overlay path, a store snapshot with a store (restorebox.storage).
SNAPSHOT_REPOSITORY = "restorebox/snapshot"


@dataclass(frozen=True)
class SnapshotImage:
    """A sandbox's filesystem, data directory included, kept to start copies from."""

    image: str  # what a ContainerSpec names to start a copy
    size: int  # bytes of its own (what it adds to the image it was made from)


@dataclass(frozen=True)
class StorageUsage:
    """What snapshots hold on disk, where the runtime can tell from shared blocks."""

    exclusive: dict[str, int]  # by snapshot: freed if it alone were removed
    logical: dict[str, int]  # by snapshot: its files' sizes
    total: int  # all of them together, shared blocks counted once


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    running: bool = True
    endpoint: Endpoint | None = None


@dataclass(frozen=True)
class ExecResult:
    """A finished command. ``stdout`` and ``stderr`` hold at most the first
    ``max_output`` bytes each; ``*_truncated`` say whether more was produced."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False
    stderr_truncated: bool = False


@dataclass(frozen=True)
class UploadFile:
    """A host file to put into a container at ``name`` (relative to the target folder);
    ``opener`` reads it from elsewhere (a member of a tar or zip) instead of ``source``."""

    source: Path
    name: str
    size: int
    opener: Callable[[], IO[bytes]] | None = None

    def open(self) -> IO[bytes]:
        return self.opener() if self.opener is not None else self.source.open("rb")


ProgressCallback = Callable[[int], None]
StreamCallback = Callable[[bytes], None]

DEFAULT_MAX_OUTPUT = 1024 * 1024


@runtime_checkable
class Runtime(Protocol):
    """A container engine. Methods raise ``EngineUnavailable`` when the engine does not
    answer, ``ContainerVanished`` when a container they need is gone."""

    def ping(self) -> None:
        """Check the engine answers."""

    def start(self, spec: ContainerSpec) -> Container:
        """Create a sandbox isolated from everything but its endpoint, put its secret
        files in place, start it; return it with its endpoint (None if it stopped at once).
        Not retried blindly: a create that may have happened is checked by name."""

    def prepare(self, spec: ContainerSpec) -> None:
        """Get ready for a later ``start`` of ``spec`` (a reset, ``spec.replaces`` set):
        an engine may make the container ahead, not started, so that the start has less
        to do. Returns at once; optional (a runtime may do nothing). What is prepared and
        never started goes with the sandbox."""

    def inspect(self, container_id: str) -> Container | None:
        """The container, or None when it no longer exists."""

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
        """Run a command inside a running container and wait for it. Output is streamed:
        ``on_stderr`` (``on_stdout``) sees every stderr (stdout) chunk as it arrives, and
        the service keeps at most ``max_output`` bytes of each stream, whatever the
        command prints. ``stdin``
        chunks are written to the command's standard input as it reads them (a backup
        streamed in without a staged copy); its end closes the input. A command that
        exits before reading everything ends the iteration early, not in an error."""

    def copy_in(
        self,
        container_id: str,
        target_dir: str,
        files: Sequence[UploadFile],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Stream host files into the container (no bind mounts), calling back with bytes sent."""

    def logs(self, container_id: str, tail: int = 100) -> str:
        """The container's last log lines."""

    def remove(self, container_id: str) -> None:
        """Remove the container and its storage, and the sandbox's isolation and endpoint
        unless another container of the sandbox still uses them (a reset's new one); a
        missing container is not an error."""

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        """Containers carrying all of ``labels``, running or not."""

    def check_isolation(self, template: ContainerSpec, repair: bool) -> str | None:
        """None when sandboxes like ``template`` verifiably cannot open connections out
        (firewall rules, or an engine setup that gives the same); otherwise what is wrong
        and how to fix it. With ``repair``, first put in place what the runtime can."""

    def disk_usage(self, labels: dict[str, str]) -> dict[str, int]:
        """Bytes each container carrying all of ``labels`` has written to the engine's disk
        (its own layer: uploads, database, WAL), by container id."""

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        """Keep the container's filesystem as an image copies start from (the container is
        paused meanwhile: the copy is crash-consistent)."""

    def remove_snapshot(self, image: str) -> bool:
        """Remove a snapshot; False (and nothing removed) while containers still use it."""

    def list_snapshots(self, labels: dict[str, str]) -> list[str]:
        """Snapshots (by image name) carrying all of ``labels``."""

    def image_id(self, image: str) -> str | None:
        """The content id of an image (a snapshot key must change when the image does)."""

    def image_labels(self, image: str) -> dict[str, str]:
        """An image's labels: a snapshot's, or what a sandbox image says of itself (its
        extensions). Empty when the image is not there."""

    def warm_up(self, template: ContainerSpec, count: int) -> None:
        """Make the isolation and endpoint of ``count`` sandboxes like ``template`` (its
        labels, image and publish host) ahead, and keep making them as they are used, so
        a start never waits for them. Optional: a runtime for which they are cheap does
        nothing."""

    def cool_down(self, labels: dict[str, str]) -> None:
        """Remove what ``warm_up`` made for ``labels`` that no sandbox took."""

    def list_isolation(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        """What the runtime made to isolate sandboxes (networks), by name, with its labels:
        ``restorebox gc`` finds the instances behind what no container uses any more."""

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        """Remove what the runtime made for sandboxes carrying ``labels`` (isolation,
        networks, policies, data directories) that no container uses and whose sandbox id
        is not in ``keep``; return what was removed, by name."""

    def storage_usage(self, snapshots: Sequence[str]) -> StorageUsage | None:
        """What the snapshots hold on disk, shared blocks counted once; None when the
        runtime cannot tell (their recorded sizes are then what there is)."""


@runtime_checkable
class DataDirRuntime(Runtime, Protocol):
    """A runtime that can mount host directories as sandboxes' data directories: what the
    store (restorebox.storage) needs to hand out snapshots and copies as file clones."""

    def cannot_mount_host_paths(self) -> str | None:
        """None when the engine runs on this host and mounts its directories; otherwise
        why not (a remote engine)."""

    def ensure_image(self, image: str) -> None:
        """Have the image here (pulled when it is not; ``ImageUnavailable`` when it cannot
        be): its data directory is exported before any container of it starts."""

    def export_data_dir(self, image: str, target: Path) -> None:
        """Write the image's own data directory (owners and modes kept) into ``target``."""

    def freeze(self, container_id: str) -> None:
        """Hold every process of the container still (a consistent point to clone its
        data directory at); ``thaw`` lets them go on."""

    def thaw(self, container_id: str) -> None: ...

    def data_dirs(self, labels: dict[str, str]) -> dict[str, str]:
        """The data directory of every container carrying ``labels`` that has one (also
        those made ahead and not started), by container id."""
