"""A fake Runtime for fast unit tests of lifecycle logic. Integration tests use the real
engine; tests/unit/test_runtime_protocol.py checks both honour the protocol."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from restorebox.runtime import Container, ContainerSpec, ExecResult, Network, UploadFile
from restorebox.runtime.base import ProgressCallback


class FakeRuntime:
    def __init__(self) -> None:
        self.containers: dict[str, Container] = {}
        self.started: list[ContainerSpec] = []
        self.networks: dict[str, Network] = {}
        self._ids = itertools.count(1)
        self._ports = itertools.count(40000)

    def ping(self) -> None:
        return None

    def start(self, spec: ContainerSpec) -> Container:
        cid = f"c{next(self._ids):063d}"
        container = Container(cid, spec.name, dict(spec.labels), True, next(self._ports))
        self.containers[cid] = container
        self.networks[spec.name] = Network(spec.name, spec.name, dict(spec.labels), 1)
        self.started.append(spec)
        return container

    def inspect(self, container_id: str) -> Container | None:
        return self.containers.get(container_id)

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str = "postgres",
    ) -> ExecResult:
        return ExecResult(0, b"", b"")

    def copy_in(
        self,
        container_id: str,
        target_dir: str,
        files: Sequence[UploadFile],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        return None

    def logs(self, container_id: str, tail: int = 100) -> str:
        return "fake log"

    def remove(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            self.networks.pop(container.name, None)

    def list_networks(self, labels: dict[str, str]) -> list[Network]:
        return [
            n
            for n in self.networks.values()
            if all(n.labels.get(k) == v for k, v in labels.items())
        ]

    def remove_network(self, network_id: str) -> None:
        self.networks.pop(network_id, None)

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        return [
            c
            for c in self.containers.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    def kill(self, container_id: str) -> None:
        """Simulate a container stopped from outside."""
        c = self.containers[container_id]
        self.containers[container_id] = Container(c.id, c.name, c.labels, False, c.host_port)
