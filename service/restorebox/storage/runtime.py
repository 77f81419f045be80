"""A runtime whose sandboxes keep their data in the store: every container gets a data
directory cloned from its image's template or from a snapshot, a snapshot is a clone of a
frozen container's directory, and removing a container removes its directory.

It wraps the engine's runtime (``DataDirRuntime``) and speaks the same protocol, so the
rest of the service neither knows nor cares: a snapshot's handle (``restorebox/snapshot:
<id>``) names a store snapshot here as it names an image on the overlay path."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from restorebox.runtime import labels as L
from restorebox.runtime.base import (
    DEFAULT_MAX_OUTPUT,
    SNAPSHOT_REPOSITORY,
    Container,
    ContainerSpec,
    DataDirRuntime,
    ExecResult,
    ProgressCallback,
    SnapshotImage,
    StorageUsage,
    StreamCallback,
    UploadFile,
)
from restorebox.storage.store import DataStore, SnapshotMeta, remove_tree

log = logging.getLogger("restorebox.storage")

IMAGE_LABEL = "restorebox.image"  # the image a store-backed container runs
# What a store keeps free before it starts a sandbox or a restore writes (loop images grow).
MIN_FREE_BYTES = 8 * 1024**3
RETIRED_WAIT_SECONDS = 60.0


class StoreRuntime:
    def __init__(self, inner: DataDirRuntime, store: DataStore) -> None:
        self.inner = inner
        self.store = store
        self._lock = threading.Lock()
        self._prepared: dict[str, ContainerSpec] = {}  # container name -> a reset's spec
        self._making: set[str] = set()  # data directories not given to a container yet

    # -- data directories ------------------------------------------------------------
    def _with_data_dir(self, spec: ContainerSpec) -> ContainerSpec:
        if spec.data_dir is not None:
            return spec
        image, source = spec.image, None
        found = self.store.snapshot(_snapshot_id(spec.image))
        if found is not None:
            source, meta = found
            image = meta.base_image
        else:
            # Pulled first where it is not here (a registry image's first sandbox): its
            # data directory is exported before the container starts.
            self.inner.ensure_image(image)
            image_id = self.inner.image_id(image)
            if image_id is None:
                return spec  # removed meanwhile: the start reports it
            source = self.store.template(
                image_id, lambda target: self.inner.export_data_dir(image, target)
            )
        self.store.ensure_free(MIN_FREE_BYTES)
        data_dir = str(self.store.new_data_dir(_dir_name(spec), source))
        with self._lock:
            self._making.add(data_dir)
        labels = {**spec.labels, IMAGE_LABEL: image}
        return replace(spec, image=image, data_dir=data_dir, labels=labels)

    def _given(self, spec: ContainerSpec) -> None:
        with self._lock:
            self._making.discard(spec.data_dir or "")

    def start(self, spec: ContainerSpec) -> Container:
        prepared = None
        if spec.replaces is not None:
            with self._lock:
                prepared = self._prepared.pop(spec.name, None)
        if prepared is not None and replace(prepared, data_dir=None) == self._plain(spec):
            made = replace(prepared, replaces=spec.replaces)
        else:
            made = self._with_data_dir(spec)
        old = self.inner.inspect(spec.replaces) if spec.replaces else None
        try:
            started = self.inner.start(made)
        except BaseException:
            if made.data_dir is not None:
                remove_tree(Path(made.data_dir))
            raise
        finally:
            self._given(made)
        if old is not None and old.labels.get(L.DATA_DIR):
            self._remove_when_gone(old.id, Path(old.labels[L.DATA_DIR]))
        return started

    def _remove_when_gone(self, container_id: str, data_dir: Path) -> None:
        """A reset's old container is deleted a moment later by the engine's runtime; its
        data directory goes once it has (``prune`` takes it if the service stops first)."""

        def remove() -> None:
            deadline = time.monotonic() + RETIRED_WAIT_SECONDS
            while time.monotonic() < deadline:
                try:
                    if self.inner.inspect(container_id) is None:
                        remove_tree(data_dir)
                        return
                except Exception:  # the engine is away: prune takes it later
                    log.debug("could not look for a reset's old container", exc_info=True)
                time.sleep(0.5)

        threading.Thread(target=remove, name="retire-data-dir", daemon=True).start()

    def _plain(self, spec: ContainerSpec) -> ContainerSpec:
        """A reset's spec as prepared: image and labels as the data directory made them."""
        found = self.store.snapshot(_snapshot_id(spec.image))
        image = found[1].base_image if found is not None else spec.image
        return replace(spec, image=image, labels={**spec.labels, IMAGE_LABEL: image})

    def prepare(self, spec: ContainerSpec) -> None:
        if spec.replaces is None:
            return
        made = self._with_data_dir(spec)
        with self._lock:
            previous = self._prepared.pop(spec.name, None)
            self._prepared[spec.name] = made
        if previous is not None and previous.data_dir is not None:
            self._given(previous)  # its container goes; prune takes the directory
        self.inner.prepare(made)
        self._given(made)

    def remove(self, container_id: str) -> None:
        """The container, its data directory, and those of its sandbox that no container
        uses any more (made ahead for a reset, or a reset's old one, which went with it)."""
        container = self.inner.inspect(container_id)
        self.inner.remove(container_id)
        if container is None:
            return
        if data_dir := container.labels.get(L.DATA_DIR):
            remove_tree(Path(data_dir))
        if sandbox := container.labels.get(L.SANDBOX):
            self._sweep(sandbox)

    def _sweep(self, sandbox: str) -> None:
        in_use = set(self.inner.data_dirs({L.SANDBOX: sandbox}).values())
        with self._lock:
            for name, prepared in list(self._prepared.items()):
                if prepared.labels.get(L.SANDBOX) == sandbox and prepared.data_dir not in in_use:
                    del self._prepared[name]
            in_use |= self._making
        for path in self.store.sandbox_dirs():
            if path.name.startswith(f"{sandbox}.") and str(path) not in in_use:
                remove_tree(path)

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        container = self.inner.inspect(container_id)
        data_dir = container.labels.get(L.DATA_DIR) if container is not None else None
        if container is None or not data_dir:  # a container of the overlay path
            return self.inner.snapshot(container_id, name, labels)
        base = container.labels.get(IMAGE_LABEL, "")
        meta = SnapshotMeta(name, base, self.inner.image_id(base) or "", labels)
        self.inner.freeze(container_id)
        try:
            saved = self.store.save_snapshot(Path(data_dir), _snapshot_id(name), meta)
        finally:
            self.inner.thaw(container_id)
        return SnapshotImage(name, self.store.usage(saved).logical)

    def remove_snapshot(self, image: str) -> bool:
        if self.store.snapshot(_snapshot_id(image)) is None:
            return self.inner.remove_snapshot(image)
        self.store.remove_snapshot(_snapshot_id(image))  # copies are clones: none uses it
        return True

    def list_snapshots(self, labels: dict[str, str]) -> list[str]:
        own = []
        for snapshot_id in self.store.snapshot_ids():
            found = self.store.snapshot(snapshot_id)
            if found is not None and labels.items() <= found[1].labels.items():
                own.append(found[1].image)
        return sorted({*own, *self.inner.list_snapshots(labels)})

    def image_id(self, image: str) -> str | None:
        found = self.store.snapshot(_snapshot_id(image))
        if found is not None:
            return f"store-snapshot:{_snapshot_id(image)}:{found[1].base_image_id}"
        return self.inner.image_id(image)

    def image_labels(self, image: str) -> dict[str, str]:
        found = self.store.snapshot(_snapshot_id(image))
        return dict(found[1].labels) if found is not None else self.inner.image_labels(image)

    def storage_usage(self, snapshots: Sequence[str]) -> StorageUsage | None:
        paths = {}
        for image in snapshots:
            found = self.store.snapshot(_snapshot_id(image))
            if found is not None:
                paths[image] = found[0]
        if not paths:
            return None
        usages = {image: self.store.usage(path) for image, path in paths.items()}
        return StorageUsage(
            exclusive={image: u.exclusive for image, u in usages.items()},
            logical={image: u.logical for image, u in usages.items()},
            total=self.store.footprint(list(paths.values())),
        )

    def disk_usage(self, labels: dict[str, str]) -> dict[str, int]:
        """A container's own layer, plus what its data directory holds exclusively."""
        self.store.ensure_free(MIN_FREE_BYTES)  # a restore polls this as it writes
        usage = self.inner.disk_usage(labels)
        for container_id, data_dir in self.inner.data_dirs(labels).items():
            exclusive = self.store.usage(Path(data_dir)).exclusive
            usage[container_id] = usage.get(container_id, 0) + exclusive
        return usage

    def prune(self, labels: dict[str, str], keep: set[str]) -> list[str]:
        removed = self.inner.prune(labels, keep)
        if labels.get(L.INSTANCE) not in (None, self.store.instance):
            return removed + self.store.remove_instance(labels[L.INSTANCE])
        in_use = set(self.inner.data_dirs({L.INSTANCE: self.store.instance}).values())
        with self._lock:
            in_use |= self._making | {s.data_dir or "" for s in self._prepared.values()}
        removed += self.store.prune_templates(lambda i: self.inner.image_id(i) is not None)
        return removed + self.store.prune(in_use)

    def list_isolation(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        found = self.inner.list_isolation(labels)
        for instance, home in self.store.instances().items():
            entry = {L.MANAGED: "true", L.INSTANCE: instance, **home}
            if labels.items() <= entry.items():
                found[f"store:{instance}"] = entry
        return found

    # -- everything else is the engine's --------------------------------------------
    def ping(self) -> None:
        self.inner.ping()

    def inspect(self, container_id: str) -> Container | None:
        return self.inner.inspect(container_id)

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
        return self.inner.exec(
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
        self.inner.copy_in(container_id, target_dir, files, on_progress)

    def logs(self, container_id: str, tail: int = 100) -> str:
        return self.inner.logs(container_id, tail)

    def list_managed(self, labels: dict[str, str]) -> list[Container]:
        return self.inner.list_managed(labels)

    def check_isolation(self, template: ContainerSpec, repair: bool) -> str | None:
        return self.inner.check_isolation(template, repair)

    def warm_up(self, template: ContainerSpec, count: int) -> None:
        self.inner.warm_up(template, count)

    def cool_down(self, labels: dict[str, str]) -> None:
        self.inner.cool_down(labels)


def _snapshot_id(image: str) -> str:
    """``restorebox/snapshot:<id>`` -> ``<id>`` (anything else names no store snapshot)."""
    repository, _, tag = image.partition(":")
    return tag if repository == SNAPSHOT_REPOSITORY and tag.isalnum() else ""


def _dir_name(spec: ContainerSpec) -> str:
    """``<sandbox id>.<random>``: every directory a sandbox had is found by its id."""
    return f"{spec.labels.get(L.SANDBOX, spec.name)}.{secrets.token_hex(3)}"
