"""A fake Runtime for fast unit tests of lifecycle logic. Integration tests use the real
engine; tests/unit/runtime/test_runtime_protocol.py runs the same behaviour checks on both."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from restorebox.runtime import (
    Container,
    ContainerSpec,
    Endpoint,
    ExecResult,
    SnapshotImage,
    UploadFile,
)
from restorebox.runtime.base import DEFAULT_MAX_OUTPUT, ProgressCallback, StreamCallback


class FakeRuntime:
    def __init__(self) -> None:
        self.containers: dict[str, Container] = {}
        self.started: list[ContainerSpec] = []
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.isolation: dict[str, dict[str, str]] = {}  # name -> labels (like networks)
        self.fail_remove = 0  # the next N removals raise, as an engine outage would
        self.images: dict[str, dict[str, str]] = {}  # snapshots
        self.written: dict[str, int] = {}  # container id -> bytes it wrote (disk_usage)
        self.isolation_problem: str | None = None  # what check_isolation answers
        self._ids = itertools.count(1)
        self._ports = itertools.count(40000)

    def ping(self) -> None:
        return None

    def start(self, spec: ContainerSpec) -> Container:
        cid = f"c{next(self._ids):063d}"
        old = self.containers.pop(spec.replaces, None) if spec.replaces else None
        if old is not None and old.endpoint is not None:  # a reset keeps the endpoint
            endpoint = old.endpoint
        else:
            endpoint = Endpoint("127.0.0.1", spec.host_port or next(self._ports))
        container = Container(cid, spec.name, dict(spec.labels), True, endpoint)
        self.containers[cid] = container
        self.secrets[cid] = dict(spec.secret_files)
        self.isolation[spec.name] = dict(spec.labels)
        self.started.append(spec)
        return container

    def prepare(self, spec: ContainerSpec) -> None:
        return None

    def inspect(self, container_id: str) -> Container | None:
        if container_id in self.containers:
            return self.containers[container_id]
        return next((c for c in self.containers.values() if c.name == container_id), None)

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
        for _ in stdin or ():  # a command that reads all of its input
            pass
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
        if self.fail_remove:
            self.fail_remove -= 1
            from restorebox.errors import EngineUnavailable

            raise EngineUnavailable("the fake engine refuses to remove")
        container = self.inspect(container_id)
        if container is not None:
            self.containers.pop(container.id, None)
            self.isolation.pop(container.name, None)

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        return [
            c
            for c in self.containers.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    def check_isolation(self, template: ContainerSpec, repair: bool) -> str | None:
        return self.isolation_problem

    def disk_usage(self, labels: dict[str, str]) -> dict[str, int]:
        return {c.id: self.written.get(c.id, 0) for c in self.list_managed(labels)}

    def storage_usage(self, snapshots: Sequence[str]) -> None:
        return None

    def list_isolation(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        return {
            name: dict(own)
            for name, own in self.isolation.items()
            if all(own.get(k) == v for k, v in labels.items())
        }

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        used = {c.name for c in self.containers.values()}
        removed = [
            name
            for name, own in self.isolation.items()
            if all(own.get(k) == v for k, v in labels.items())
            and name not in used
            and own.get("restorebox.sandbox") not in keep
        ]
        for name in removed:
            del self.isolation[name]
        return removed

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        self.images[name] = dict(labels)
        return SnapshotImage(name, 1000)

    def warm_up(self, template: ContainerSpec, count: int) -> None:
        return None

    def cool_down(self, labels: dict[str, str]) -> None:
        return None

    def remove_snapshot(self, image: str) -> bool:
        if any(spec.image == image for spec in self.started if self._running(spec.name)):
            return False
        self.images.pop(image, None)
        return True

    def list_snapshots(self, labels: dict[str, str]) -> list[str]:
        return sorted(
            i for i, own in self.images.items() if all(own.get(k) == v for k, v in labels.items())
        )

    def image_labels(self, image: str) -> dict[str, str]:
        return dict(self.images.get(image, {}))

    def image_id(self, image: str) -> str | None:
        if image.startswith("restorebox/snapshot:") and image not in self.images:
            return None  # a snapshot this engine does not hold
        return f"sha256:{abs(hash(image)):x}"

    def _running(self, name: str) -> bool:
        return any(c.name == name for c in self.containers.values())

    def kill(self, container_id: str) -> None:
        """Simulate a container stopped from outside."""
        c = self.containers[container_id]
        self.containers[container_id] = Container(c.id, c.name, c.labels, False, c.endpoint)
