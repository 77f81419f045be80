"""What restorebox needs from a container engine, and nothing more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ContainerSpec:
    """A PostgreSQL sandbox container to start."""

    image: str
    name: str
    env: dict[str, str]
    labels: dict[str, str]
    publish_host: str = "127.0.0.1"
    memory_bytes: int = 2 * 1024**3
    cpus: float = 2.0
    pids: int = 1024
    command: Sequence[str] = ()


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    running: bool = True
    host_port: int | None = None


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class UploadFile:
    """A host file to put into a container at ``name`` (relative to the target folder)."""

    source: Path
    name: str
    size: int


ProgressCallback = Callable[[int], None]


@runtime_checkable
class Runtime(Protocol):
    """A container engine. Methods raise ``EngineUnavailable`` when the engine does not answer."""

    def ping(self) -> None:
        """Check the engine answers."""

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start a container, on a network of its own named ``spec.name``,
        with port 5432 published; return it with its port."""

    def inspect(self, container_id: str) -> Container | None:
        """The container, or None when it no longer exists."""

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str = "postgres",
    ) -> ExecResult:
        """Run a command inside a running container and wait for it."""

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
        """Remove the container, its anonymous volumes and its network; a missing
        container is not an error."""

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        """Containers carrying all of ``labels``, running or not."""

    def list_networks(self, labels: dict[str, str]) -> list[Network]:
        """Networks carrying all of ``labels``, with how many containers they hold."""

    def remove_network(self, network_id: str) -> None:
        """Remove a network; a missing one is not an error."""
