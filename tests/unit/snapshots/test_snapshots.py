"""The snapshot cache's rules, on a fake runtime: keys, lookup, eviction order."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from restorebox.backups import Catalog
from restorebox.errors import SnapshotInUse, SnapshotNotFound
from restorebox.lifecycle.manager import SandboxManager
from restorebox.lifecycle.store import Store
from restorebox.models import Sandbox, Snapshot, Status, utcnow
from restorebox.runtime import ContainerSpec, SnapshotImage
from restorebox.runtime import labels as L
from restorebox.settings import Settings
from restorebox.snapshots import cache as snapshots
from restorebox.snapshots.cache import SnapshotCache, cache_key
from restorebox.snapshots.store import SnapshotStore
from tests.fakes import FakeRuntime


def sandbox(**changes: object) -> Sandbox:
    now = utcnow()
    base = Sandbox(
        id="s", status=Status.READY, postgres_version=17, image="img", created_at=now,
        expires_at=now, database="app",
    )  # fmt: skip
    return base.model_copy(update=changes)


def test_the_key_changes_with_everything_that_changes_the_result() -> None:
    key = cache_key(sandbox(), ["a" * 64], "sha256:1")
    assert key == cache_key(sandbox(), ["a" * 64], "sha256:1")
    assert key != cache_key(sandbox(), ["b" * 64], "sha256:1")  # a changed backup
    assert key != cache_key(sandbox(), ["a" * 64], "sha256:2")  # a changed image
    assert key != cache_key(sandbox(postgres_version=15), ["a" * 64], "sha256:1")
    assert key != cache_key(sandbox(probes_requested=[]), ["a" * 64], "sha256:1")
    assert key != cache_key(sandbox(on_error="continue"), ["a" * 64], "sha256:1")
    assert key != cache_key(sandbox(profile_requested="none"), ["a" * 64], "sha256:1")


def snapshot(snapshot_id: str, age_minutes: int, key: str | None = "k", **more: object) -> Snapshot:
    return Snapshot(
        id=snapshot_id, image=f"restorebox/snapshot:{snapshot_id}", size_bytes=100, key=key,
        postgres_version=17, database="app",
        last_used_at=utcnow() - timedelta(minutes=age_minutes), **more,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_snapshot_whose_data_is_gone_is_forgotten_and_restored_again(tmp_path: Path) -> None:
    """Kept in a store since turned off (RESTOREBOX_STORE=off), or an image removed by
    hand: the record alone must not send a copy to a registry for it."""
    runtime = FakeRuntime()
    store = SnapshotStore(tmp_path / "snapshots.sqlite3")
    cache = SnapshotCache(store, runtime, Settings(state_dir=tmp_path), "i")
    here, gone = snapshot("here", 1, key="k1"), snapshot("gone", 1, key="k2")
    for item in (here, gone):
        store.put(item)
    runtime.images[here.image] = {}
    assert cache.find("k1") == here
    assert cache.find("k2") is None
    assert [s.id for s in store.list()] == ["here"]


def test_eviction_is_least_recently_used_and_spares_what_is_in_use_or_named(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime()
    store = SnapshotStore(tmp_path / "snapshots.sqlite3")
    cache = SnapshotCache(store, runtime, Settings(state_dir=tmp_path, snapshot_max_bytes=200), "i")
    for item in (
        snapshot("old", 30, key="k1"),
        snapshot("busy", 60, key="k2"),
        snapshot("new", 1, key="k3"),
        snapshot("mine", 90, key=None, name="mine"),
    ):
        store.put(item)
        runtime.images[item.image] = {}
    runtime.start(ContainerSpec("restorebox/snapshot:busy", "copy", {}, {}))
    assert cache.evict() == ["old"]  # busy is older but in use; named ones are not counted
    assert {s.id for s in store.list()} == {"busy", "new", "mine"}
    with pytest.raises(SnapshotInUse):
        cache.delete("busy")
    assert store.get("mine").id == "mine"  # by name
    with pytest.raises(SnapshotNotFound):
        store.get("nope")


class CommitsDuringAReconcile(FakeRuntime):
    """The reconciler runs between a snapshot's commit and its record (a real race)."""

    during: Callable[[], object] = staticmethod(lambda: None)

    def snapshot(self, container_id: str, name: str, labels: dict[str, str]) -> SnapshotImage:
        made = super().snapshot(container_id, name, labels)
        self.during()
        return made


def test_a_snapshot_being_taken_is_not_an_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checkpoint needs a server; what is under test is the image's bookkeeping.
    monkeypatch.setattr(snapshots, "connect", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(snapshots, "checkpoint_with_little_wal", lambda conn: None)
    runtime = CommitsDuringAReconcile()
    settings = Settings(state_dir=tmp_path, backups_dir=tmp_path, api_token="unit-test-token-0123")
    manager = SandboxManager(
        settings, Store(settings.database_file), runtime, Catalog(tmp_path), "i"
    )
    stray = "restorebox/snapshot:stray"  # a crash's leftover: no record, nobody taking it
    runtime.images[stray] = {L.MANAGED: "true", L.INSTANCE: "i"}
    during: list[dict[str, list[str]]] = []
    runtime.during = lambda: during.append(manager.reconcile(at_start=True))

    taken = manager.snapshots.take(sandbox(container_id="c", port=1), key="k")

    assert during[0]["removed"] == [stray]
    assert taken.image in runtime.images
    assert manager.snapshots.find("k") == taken
    assert manager.snapshots.taking() == set()
    assert taken.image not in manager.reconcile(at_start=True)["removed"]  # now recorded
