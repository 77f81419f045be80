"""The store's bookkeeping without a cloning filesystem: what prune removes and spares,
snapshot metadata, other instances' directories. (Clones, extents and the loop image are
tested for real in tests/integration/storage.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from restorebox.storage.runtime import _snapshot_id
from restorebox.storage.store import PRUNE_GRACE_SECONDS, DataStore, SnapshotMeta


def aged(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def store(tmp_path: Path, instance: str = "mine") -> DataStore:
    return DataStore(tmp_path, instance, {"restorebox.state_dir": "/nowhere"})


def test_prune_removes_only_old_unused_directories(tmp_path: Path) -> None:
    s = store(tmp_path)
    used, unused = s.data_dir("a.111111"), s.data_dir("b.222222")
    for path in (used, unused):
        path.mkdir()
        aged(path, 3600)
    young = s.data_dir("c.333333")
    young.mkdir()
    removed = s.prune(in_use={str(used)})
    assert removed == ["b.222222"]
    assert used.exists()
    assert young.exists()
    assert not unused.exists()
    aged(young, PRUNE_GRACE_SECONDS + 1)
    assert s.prune(in_use={str(used)}) == ["c.333333"]


def test_a_snapshot_without_its_metadata_is_partial_and_pruned(tmp_path: Path) -> None:
    s = store(tmp_path)
    whole, partial = s.snapshots / "aaaa", s.snapshots / "bbbb"
    for path in (whole, partial):
        path.mkdir()
        aged(path, 3600)
    meta = SnapshotMeta("restorebox/snapshot:aaaa", "img", "sha256:1", {"k": "v"})
    (s.snapshots / "aaaa.json").write_text(json.dumps(meta.__dict__))
    assert s.prune(in_use=set()) == ["bbbb"]
    assert s.snapshot_ids() == ["aaaa"]
    found = s.snapshot("aaaa")
    assert found is not None
    assert found[1] == meta
    s.remove_snapshot("aaaa")
    assert s.snapshot("aaaa") is None
    assert not whole.exists()


def test_another_instance_is_listed_with_its_home_and_removed_on_request(tmp_path: Path) -> None:
    mine, theirs = store(tmp_path, "mine"), store(tmp_path, "theirs")
    assert set(mine.instances()) == {"mine", "theirs"}
    assert mine.instances()["theirs"] == {"restorebox.state_dir": "/nowhere"}
    assert mine.remove_instance("mine") == []  # never its own
    assert mine.remove_instance("theirs") == ["store:theirs"]
    assert not theirs.base.exists()
    assert mine.base.exists()


def test_only_snapshot_handles_name_store_snapshots() -> None:
    assert _snapshot_id("restorebox/snapshot:0a1b2c") == "0a1b2c"
    assert _snapshot_id("restorebox/postgres:17") == ""
    assert _snapshot_id("restorebox/snapshot:../x") == ""


def test_templates_of_images_the_engine_no_longer_has_are_removed(tmp_path: Path) -> None:
    s = store(tmp_path)
    for image_id in ("sha256:aaaa", "sha256:bbbb"):
        (s.templates / image_id.replace(":", "-")).mkdir()
    assert s.prune_templates(lambda image_id: image_id == "sha256:aaaa") == ["template sha256:bbbb"]
    assert [p.name for p in s.templates.iterdir()] == ["sha256-aaaa"]
