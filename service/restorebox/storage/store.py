"""The store's layout and the operations on it. Under its root (the loop-mounted image's
filesystem, or a directory that clones files as it is):

* ``templates/<image id>/``: an image's own data directory, exported once; a new sandbox's
  data directory is a clone of it (no initdb, no copy);
* ``instances/<instance>/home.json``: where that instance keeps its state (gc tells a
  vanished instance by it);
* ``instances/<instance>/sandboxes/<name>/``: a container's data directory, named after
  the container it was made for;
* ``instances/<instance>/snapshots/<id>/`` and ``<id>.json``: a snapshot's data directory
  and what it is (its image, labels); the metadata is written last, so a snapshot without
  it is a partial one.

Everything is made under a temporary name and renamed into place: a crash leaves either
nothing or a whole directory (``.partial-*`` leftovers are removed by ``prune``)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restorebox.storage import extents, loop
from restorebox.storage.reflink import clone_tree

log = logging.getLogger("restorebox.storage")

PARTIAL = ".partial-"
GROW_FACTOR = 2
# Changed a moment ago (made, not yet given to its container): never pruned.
PRUNE_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class SnapshotMeta:
    image: str  # the handle copies name (``restorebox/snapshot:<id>``)
    base_image: str  # the image a copy's container runs
    base_image_id: str
    labels: dict[str, str]


class DataStore:
    """Data directories of one instance, on a filesystem that clones files."""

    def __init__(
        self,
        root: Path,
        instance: str,
        home: dict[str, str],
        image_file: Path | None = None,
        mountpoint: Path | None = None,
    ) -> None:
        self.root = root
        self.instance = instance
        self.image_file = image_file  # a loop-mounted image, grown when short of space
        self.mountpoint = mountpoint
        self.base = root / "instances" / instance
        self.sandboxes = self.base / "sandboxes"
        self.snapshots = self.base / "snapshots"
        self.templates = root / "templates"
        for directory in (self.sandboxes, self.snapshots, self.templates):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        home_file = self.base / "home.json"
        if not home_file.exists():
            _write_atomically(home_file, json.dumps(home).encode())
        self._grow_lock = threading.Lock()

    # -- data directories --------------------------------------------------------
    def template(self, image_id: str, export: Callable[[Path], None]) -> Path:
        """An image's data directory, exported (by ``export``, into an empty directory)
        the first time it is asked for."""
        target = self.templates / image_id.replace(":", "-")
        if target.exists():
            return target
        partial = self.templates / f"{PARTIAL}{secrets.token_hex(4)}"
        partial.mkdir(mode=0o700)
        try:
            export(partial)
            os.rename(partial, target)
        except OSError:
            if not target.exists():  # another thread's made it first otherwise
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def new_data_dir(self, name: str, source: Path) -> Path:
        """A container's data directory: a clone of ``source`` (a template or snapshot)."""
        return self._clone(source, self.sandboxes / name)

    def data_dir(self, name: str) -> Path:
        return self.sandboxes / name

    def _clone(self, source: Path, target: Path) -> Path:
        partial = target.with_name(f"{PARTIAL}{target.name}-{secrets.token_hex(3)}")
        try:
            clone_tree(source, partial)
            os.rename(partial, target)
        except OSError:
            remove_tree(partial)
            raise
        return target

    # -- snapshots ----------------------------------------------------------------
    def save_snapshot(self, data_dir: Path, snapshot_id: str, meta: SnapshotMeta) -> Path:
        """Clone a (paused or stopped) data directory as a snapshot."""
        target = self._clone(data_dir, self.snapshots / snapshot_id)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (target / leftover).unlink(missing_ok=True)
        _write_atomically(self._meta_file(snapshot_id), json.dumps(meta.__dict__).encode())
        return target

    def _meta_file(self, snapshot_id: str) -> Path:
        return self.snapshots / f"{snapshot_id}.json"

    def snapshot(self, snapshot_id: str) -> tuple[Path, SnapshotMeta] | None:
        if not snapshot_id:
            return None
        try:
            raw: dict[str, Any] = json.loads(self._meta_file(snapshot_id).read_text())
        except (OSError, ValueError):
            return None
        return self.snapshots / snapshot_id, SnapshotMeta(**raw)

    def snapshot_ids(self) -> list[str]:
        return sorted(p.stem for p in self.snapshots.glob("*.json"))

    def remove_snapshot(self, snapshot_id: str) -> None:
        self._meta_file(snapshot_id).unlink(missing_ok=True)  # first: no half snapshot found
        remove_tree(self.snapshots / snapshot_id)

    # -- space ----------------------------------------------------------------------
    def usage(self, path: Path) -> extents.TreeUsage:
        return extents.tree_usage(path)

    def footprint(self, paths: list[Path]) -> int:
        return extents.footprint(paths)

    def ensure_free(self, needed: int) -> None:
        """Grow a loop-mounted image so that ``needed`` more bytes fit (doubling it, or
        more, as far as the host's own disk allows). A store on a host filesystem is what
        it is."""
        if self.image_file is None or self.mountpoint is None:
            return
        with self._grow_lock:
            free = _free_bytes(self.root)
            if free >= needed:
                return
            size = self.image_file.stat().st_size
            host_free = _free_bytes(self.image_file.parent)
            wanted = max(size * GROW_FACTOR, size + needed - free + needed // 4)
            target = min(wanted, size + host_free)
            if target > size:
                loop.grow(self.image_file, self.mountpoint, target)

    # -- upkeep --------------------------------------------------------------------
    def prune(self, in_use: set[str]) -> list[str]:
        """Remove data directories no container uses (by path), snapshots without their
        metadata and leftovers of interrupted work, sparing what changed a moment ago (a
        directory whose container is being created). Returns what was removed."""
        removed = []
        now = time.time()
        for path in [*self.sandboxes.iterdir(), *self.snapshots.iterdir()]:
            if not path.is_dir() or str(path) in in_use:
                continue
            if path.parent == self.snapshots and self._meta_file(path.name).exists():
                continue
            try:
                if now - path.stat().st_mtime < PRUNE_GRACE_SECONDS:
                    continue
            except OSError:
                continue
            remove_tree(path)
            removed.append(path.name)
        return removed

    def prune_templates(self, exists: Callable[[str], bool]) -> list[str]:
        """Remove the templates of images the engine no longer has (rebuilt and pruned):
        nothing can start from them any more."""
        removed = []
        for path in self.templates.iterdir():
            if path.name.startswith(PARTIAL) or not path.is_dir():
                continue
            image_id = path.name.replace("-", ":", 1)
            if not exists(image_id):
                remove_tree(path)
                removed.append(f"template {image_id[:19]}")
        return removed

    def sandbox_dirs(self) -> list[Path]:
        return [p for p in self.sandboxes.iterdir() if p.is_dir()]

    def instances(self) -> dict[str, dict[str, str]]:
        """Every instance with directories in this store, with where it keeps its state."""
        found = {}
        for home in (self.root / "instances").glob("*/home.json"):
            try:
                raw = json.loads(home.read_text())
                found[home.parent.name] = {str(k): str(v) for k, v in raw.items()}
            except (OSError, ValueError):
                found[home.parent.name] = {}
        return found

    def remove_instance(self, instance: str) -> list[str]:
        """Everything of another instance (vanished, or named to ``restorebox gc``)."""
        path = self.root / "instances" / instance
        if instance == self.instance or not path.is_dir():
            return []
        remove_tree(path)
        return [f"store:{instance}"]


def _free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{PARTIAL}{path.name}")
    partial.write_bytes(data)
    os.replace(partial, path)
