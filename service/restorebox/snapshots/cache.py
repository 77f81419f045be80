"""Snapshots: restored sandboxes kept (clones in the store, or images on the overlay
path), so later copies start in about a second.

A cache snapshot is found by its key: the backups' checksums in order, the content id of
the image they were restored into, and every option that changes the result. A changed
backup or image never finds an old snapshot. The cache is bounded by size, least recently
used first, and a snapshot live sandboxes use is never removed from under them."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from restorebox.backups.model import Backup
from restorebox.errors import RestoreboxError, SnapshotFailed, SnapshotInUse
from restorebox.models import Sandbox, Snapshot
from restorebox.pg import connect
from restorebox.runtime import Runtime, SnapshotImage
from restorebox.runtime import labels as L
from restorebox.runtime.base import SNAPSHOT_REPOSITORY
from restorebox.settings import Settings
from restorebox.snapshots.checkpoint import checkpoint_with_little_wal
from restorebox.snapshots.store import SnapshotStore

log = logging.getLogger("restorebox.snapshots.cache")


def cache_key(
    sandbox: Sandbox, backup_sha256: list[str], image_id: str, masking_key: str = ""
) -> str:
    """Everything that changes what a restore produces."""
    material: dict[str, Any] = {
        "backups": backup_sha256,
        "image": image_id,
        "postgres": sandbox.postgres_version,
        "database": sandbox.database,
        "on_error": sandbox.on_error,
        "profile": sandbox.profile_requested,
        "probes": sandbox.probes_requested,
        "assertions": [a.model_dump() for a in sandbox.assertions],
    }
    if sandbox.masking_policy is not None:  # masked and unmasked never share a snapshot
        material["masking"] = sandbox.masking_policy.digest_material()
        material["masking_key"] = masking_key
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class SnapshotCache:
    """Taking, finding and evicting snapshots; the engine holds the images."""

    def __init__(
        self,
        store: SnapshotStore,
        runtime: Runtime,
        settings: Settings,
        instance: str,
        referenced: Callable[[], set[str]] = set,
        release: Callable[[str], None] = lambda snapshot_id: None,
    ) -> None:
        # Snapshots live sandboxes go back to on reset: in use, even when no container
        # runs from their image (a restored sandbox's own snapshot).
        self.referenced = referenced
        # Called before a snapshot is removed: what was made ahead of it goes first.
        self.release = release
        # Names the masking key in masked snapshots' keys (set by the manager).
        self.masking_fingerprint = ""
        self.store = store
        self.runtime = runtime
        self.settings = settings
        self.instance = instance
        self._lock = threading.Lock()
        self._taking: set[str] = set()  # images being committed, not yet recorded
        self._taking_lock = threading.Lock()  # never held across an engine call

    @property
    def enabled(self) -> bool:
        return self.settings.snapshot_max_bytes > 0

    def key_for(self, sandbox: Sandbox, backups: tuple[Backup, ...]) -> str | None:
        if not self.enabled or not backups or sandbox.image is None:
            return None
        image_id = self.runtime.image_id(sandbox.image)
        if image_id is None:
            return None
        return cache_key(sandbox, [b.sha256 for b in backups], image_id, self.masking_fingerprint)

    def find(self, key: str | None) -> Snapshot | None:
        """The cache snapshot for ``key``; one whose data is not here any more (kept in a
        store since turned off, or an image removed by hand) is forgotten, and the
        backup is restored again."""
        found = self.store.by_key(key) if key else None
        if found is not None and not self.available(found):
            log.warning(
                "snapshot data missing: forgotten, restoring again",
                extra={"snapshot": found.id, "image": found.image},
            )
            self.store.delete(found.id)
            return None
        return found

    def available(self, snapshot: Snapshot) -> bool:
        return self.runtime.image_id(snapshot.image) is not None

    def evict_quietly(self) -> None:
        """Evict, logging rather than raising (it runs after a sandbox is handed out)."""
        try:
            self.evict()
        except RestoreboxError as exc:
            log.warning("snapshot eviction failed; retried next time", extra={"error": exc.message})

    def take(
        self,
        sandbox: Sandbox,
        *,
        key: str | None = None,
        name: str | None = None,
        owner: str = "admin",
        backups: tuple[Backup, ...] = (),
    ) -> Snapshot:
        """Checkpoint, then keep the container's data (frozen while it is cloned or
        committed: crash-consistent, its little WAL replays in a moment on start)."""
        assert sandbox.container_id is not None
        try:
            with connect(sandbox, dbname=sandbox.initial_database) as conn:
                checkpoint_with_little_wal(conn)
        except psycopg.Error as exc:
            reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
            raise SnapshotFailed(f"the checkpoint before the snapshot failed: {reason}") from exc
        snapshot_id = secrets.token_hex(6)
        labels = {
            L.MANAGED: "true",
            L.INSTANCE: self.instance,
            "restorebox.snapshot": snapshot_id,
            **L.home(self.settings.state_dir),
        }
        name_of_image = f"{SNAPSHOT_REPOSITORY}:{snapshot_id}"
        with self._taking_lock:
            self._taking.add(name_of_image)
        try:
            image = self.runtime.snapshot(sandbox.container_id, name_of_image, labels)
            return self._record(sandbox, snapshot_id, image, key, name, owner, backups)
        finally:
            with self._taking_lock:
                self._taking.discard(name_of_image)

    def taking(self) -> set[str]:
        """Images being taken: committed, or about to be, and not recorded yet. The
        reconciler spares them; it reads this after listing the images."""
        with self._taking_lock:
            return set(self._taking)

    def _record(
        self,
        sandbox: Sandbox,
        snapshot_id: str,
        image: SnapshotImage,
        key: str | None,
        name: str | None,
        owner: str,
        backups: tuple[Backup, ...],
    ) -> Snapshot:
        # Recorded only once the image is whole: a crash before this leaves an image no
        # record names, which the reconciler removes; never a half snapshot served.
        snapshot = Snapshot(
            id=snapshot_id,
            image=image.image,
            size_bytes=image.size,
            key=key,
            name=name,
            owner=owner,
            backups=list(sandbox.backups),
            backup_sha256=[b.sha256 for b in backups],
            postgres_version=sandbox.postgres_version or 0,
            database=sandbox.database,
            creates_databases=sandbox.creates_databases,
            source_sandbox=sandbox.id,
            restore=sandbox.restore,
            probes=sandbox.probes,
            verdict=sandbox.verdict,
            masking=sandbox.masking,
        )
        with self._lock:
            stale = self.store.by_key(key) if key is not None else None
            if stale is not None:  # "fresh": the new restore replaces it for new creates
                if stale.id in self.referenced():  # ...but live sandboxes reset to it
                    self.store.put(
                        stale.model_copy(update={"key": None, "replaced_by": snapshot_id})
                    )
                else:
                    self.store.delete(stale.id)
                    self._remove_image(stale)
            self.store.put(snapshot)
        log.info(
            "snapshot taken",
            extra={"sandbox": sandbox.id, "snapshot": snapshot_id, "bytes": image.size},
        )
        return snapshot

    def evict(self) -> list[str]:
        """Least recently used cache snapshots go until the cache fits its size; named
        snapshots are their owners' and stay; one in use stays (the engine refuses)."""
        removed: list[str] = []
        with self._lock:
            cached = [s for s in self.store.list() if s.name is None]
            total = self.footprint(cached)
            referenced = self.referenced()
            # Replaced snapshots first (whatever the size): nothing new ever copies them.
            order = sorted(cached, key=lambda s: (s.replaced_by is None, s.last_used_at))
            for snapshot in order:
                if total <= self.settings.snapshot_max_bytes and snapshot.replaced_by is None:
                    break
                if snapshot.id in referenced:
                    continue
                if self._remove_image(snapshot):
                    self.store.delete(snapshot.id)
                    cached.remove(snapshot)
                    total = self.footprint(cached)  # what it shared may now be others' own
                    removed.append(snapshot.id)
        if removed:
            log.info("snapshots evicted", extra={"snapshots": removed})
        return removed

    def footprint(self, snapshots: list[Snapshot]) -> int:
        """What the snapshots hold on disk together: with a store, counted from their
        blocks (shared ones once); otherwise the sum of their images' own sizes."""
        usage = self.runtime.storage_usage([s.image for s in snapshots])
        if usage is None:
            return sum(s.size_bytes for s in snapshots)
        rest = sum(s.size_bytes for s in snapshots if s.image not in usage.exclusive)
        return usage.total + rest

    def delete(self, ref: str) -> None:
        snapshot = self.store.get(ref)
        if snapshot.id in self.referenced() or not self._remove_image(snapshot):
            raise SnapshotInUse(
                f"snapshot {snapshot.id} is used by live sandboxes; delete them first"
            )
        self.store.delete(snapshot.id)

    def _remove_image(self, snapshot: Snapshot) -> bool:
        """False when the engine keeps it (containers of it still exist)."""
        self.release(snapshot.id)
        return self.runtime.remove_snapshot(snapshot.image)
