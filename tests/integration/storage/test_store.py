"""Issue 20: thin copies on any host. The store on an XFS image the test makes and
loop-mounts (this host's own filesystem, ext4, cannot clone), against the overlay path it
falls back to: a copy's full read of a big table costs the copy nothing on the store and
the table's size on the overlay path; snapshots survive a restart; gc finds the store
directories of a vanished instance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from restorebox.runtime import labels as L
from restorebox.storage import extents, loop
from restorebox.storage.reflink import cannot_clone, clone_tree
from tests.conftest import Api, execute, query

pytestmark = pytest.mark.integration

BIG_ROWS = 400_000  # about 150 MB of table, its index beside it


@pytest.fixture(scope="module")
def mounted() -> Iterator[list[Path]]:
    """The images this module's tests mounted, detached once the module is done: a test's
    own teardown would come before its services' checks for leftovers (make_api)."""
    made: list[Path] = []
    yield made
    for mountpoint in made:
        loop.detach(mountpoint)


@pytest.fixture
def xfs(tmp_path: Path, mounted: list[Path]) -> Path:
    """An XFS image of the test's own, loop-mounted (what the store makes on ext4)."""
    if os.geteuid() != 0:
        pytest.skip("loop mounts need root (scripts/test runs as root)")
    store = tmp_path / "own-store"
    store.mkdir()
    mounted.append(store / "xfs")
    try:
        loop.ensure_mounted(store / loop.STORE_IMAGE, store / "xfs", 2 * 1024**3)
    except loop.LoopUnavailable as exc:  # a machine without loop devices: the overlay path
        pytest.skip(f"no XFS image can be mounted here: {exc}")
    return store


def own_bytes(api: Api, sandbox: dict[str, Any]) -> int:
    """What the sandbox's current container holds of its own: its layer, and with a store
    the blocks of its data directory nothing else shares (a reset's old container, until
    it is deleted, is not counted)."""
    container_id = api.services.manager.get(sandbox["id"]).container_id
    usage = api.services.manager.runtime.disk_usage({L.SANDBOX: sandbox["id"]})
    return usage[container_id]


def snapshot_of_a_big_table(api: Api) -> str:
    sandbox = api.create()
    execute(
        sandbox["connection_url"],
        "CREATE TABLE big (id int PRIMARY KEY, body text);"
        f"INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, {BIG_ROWS}) g",
    )
    # As a restore kept as a snapshot is: every page's hint bits set once, before the
    # snapshot, not by each copy's first read (docs/decisions.md, "The store").
    execute(sandbox["connection_url"], "VACUUM big")
    saved = api.post(f"/v1/sandboxes/{sandbox['id']}/snapshot", json={"name": "big"})
    assert saved.status_code == 201, saved.text
    api.delete(f"/v1/sandboxes/{sandbox['id']}")
    return "big"


def full_read(sandbox: dict[str, Any]) -> None:
    [(count,)] = query(sandbox["connection_url"], "SELECT count(*) FROM big WHERE body <> ''")
    assert count == BIG_ROWS


def test_clones_share_every_block_until_written(xfs: Path) -> None:
    root = xfs / "xfs"
    assert cannot_clone(root) is None
    source = root / "source"
    (source / "base").mkdir(parents=True)
    (source / "base" / "1").write_bytes(os.urandom(8 * 1024 * 1024))
    os.chown(source / "base" / "1", 70, 70)
    os.chmod(source, 0o700)
    clone_tree(source, root / "clone")
    cloned = root / "clone" / "base" / "1"
    assert cloned.read_bytes() == (source / "base" / "1").read_bytes()
    assert (cloned.stat().st_uid, oct(os.stat(root / "clone").st_mode & 0o777)) == (70, "0o700")
    os.sync()
    assert extents.tree_usage(root / "clone").exclusive == 0
    assert extents.footprint([source, root / "clone"]) == 8 * 1024 * 1024  # counted once
    with cloned.open("r+b") as file:  # one block written: only that block is the clone's
        file.write(b"x" * 4096)
    os.sync()
    assert extents.tree_usage(root / "clone").exclusive == 4096


def test_a_copy_on_the_store_reads_a_big_table_without_copying_it(make_api: Any, xfs: Path) -> None:
    with make_api(store=str(xfs), snapshot_max_bytes=10 * 1024**3) as api:
        health = api.client.get("/healthz").json()["store"]
        assert health == {"mode": "xfs-loop", "path": str(xfs / "xfs"), "reason": None}
        name = snapshot_of_a_big_table(api)
        [listed] = api.get("/v1/snapshots").json()["snapshots"]
        assert listed["size_basis"] == "exclusive"
        assert listed["logical_bytes"] > BIG_ROWS * 256  # its files
        assert listed["size_bytes"] > BIG_ROWS * 256  # its source is gone: all its own
        copy = api.create(snapshot=name)
        full_read(copy)
        assert own_bytes(api, copy) < 30 * 1024**2  # catalogs and WAL, not the table
        [listed] = api.get("/v1/snapshots").json()["snapshots"]
        assert listed["size_bytes"] < listed["logical_bytes"] / 2  # the copy shares it
        # A reset is a clone too: the table is there again, still nothing copied.
        execute(copy["connection_url"], "DELETE FROM big")
        reset = api.post(f"/v1/sandboxes/{copy['id']}/reset", json={"wait": True})
        assert reset.json()["status"] == "ready", reset.text
        full_read(copy)
        assert own_bytes(api, copy) < 30 * 1024**2
    # The service again, on the same state and store: the snapshot is still there.
    with make_api(store=str(xfs), snapshot_max_bytes=10 * 1024**3) as api:
        again = api.create(snapshot=name)
        full_read(again)


@pytest.mark.slow
def test_the_overlay_path_is_the_fallback_and_copies_up_what_it_reads(make_api: Any) -> None:
    with make_api(store="off", snapshot_max_bytes=10 * 1024**3) as api:
        health = api.client.get("/healthz").json()["store"]
        assert health["mode"] == "overlay"
        assert "RESTOREBOX_STORE=off" in health["reason"]
        name = snapshot_of_a_big_table(api)
        copy = api.create(snapshot=name)
        before = own_bytes(api, copy)
        full_read(copy)
        assert own_bytes(api, copy) - before > BIG_ROWS * 256  # the table, copied up


def test_gc_removes_the_store_directories_of_a_vanished_instance(
    make_api: Any, tmp_path: Path
) -> None:
    from restorebox.lifecycle.gc import collect

    with make_api() as api:
        store = api.services.store
        if store.mode == "overlay":
            pytest.skip(f"no store here: {store.reason}")
        gone = Path(store.path) / "instances" / "0123456789abcdef"
        (gone / "sandboxes" / "someone.abc123").mkdir(parents=True)
        home = {L.STATE_DIR: str(tmp_path / "deleted-state"), **_host()}
        (gone / "home.json").write_text(__import__("json").dumps(home))
        runtime = api.services.manager.runtime
        findings = collect(api.settings, runtime, instances=set(), remove=False)
        assert ("0123456789abcdef", "vanished instance") in {
            (f.instance, f.verdict) for f in findings
        }
        assert gone.exists()  # only reported
        collect(api.settings, runtime, instances=set(), remove=True)
        assert not gone.exists()


def _host() -> dict[str, str]:
    import socket

    return {L.HOST: socket.gethostname()}


def test_a_reset_prepared_ahead_starts_on_its_clone_and_nothing_of_the_sandbox_stays(
    xfs: Path, docker_runtime: Any, tmp_path: Path
) -> None:
    """The store's runtime under Docker's ``prepare``: the reset starts the container made
    ahead, on the data directory cloned for it; the old container's directory goes after
    it, and removing the sandbox leaves no directory."""
    import secrets
    import time
    from dataclasses import replace

    from restorebox.settings import Settings
    from restorebox.storage.opening import open_store
    from tests.integration.runtime.test_runtime_contract import spec

    settings = Settings(state_dir=tmp_path / "state", store=str(xfs))
    runtime, state = open_store(settings, docker_runtime, "contract")
    assert state.mode == "xfs-loop"
    sandboxes = xfs / "xfs" / "instances" / "contract" / "sandboxes"
    sid = secrets.token_hex(4)
    first = runtime.start(spec(sid))
    try:
        runtime.prepare(replace(spec(sid), replaces=first.id))
        deadline = time.monotonic() + 30
        while len(runtime.inner.data_dirs({L.SANDBOX: sid})) < 2:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "nothing was prepared"
            time.sleep(0.1)
        made_ahead = set(runtime.inner.data_dirs({L.SANDBOX: sid}).values()) - {  # type: ignore[attr-defined]
            first.labels[L.DATA_DIR]
        }
        again = runtime.start(replace(spec(sid), replaces=first.id))
        assert {again.labels[L.DATA_DIR]} == made_ahead  # no clone made on the reset's path
        assert again.endpoint == first.endpoint
        while len(list(sandboxes.iterdir())) > 1:  # the old one's, once it is deleted
            assert time.monotonic() < deadline + 30, sorted(sandboxes.iterdir())
            time.sleep(0.2)
        assert [str(p) for p in sandboxes.iterdir()] == [again.labels[L.DATA_DIR]]
    finally:
        for container in runtime.list_managed({L.SANDBOX: sid}):
            runtime.remove(container.id)
    assert list(sandboxes.iterdir()) == []


def test_a_store_on_a_cloning_filesystem_is_used_as_it_is_and_a_full_one_fails_clearly(
    xfs: Path, make_api: Any, backups_dir: Path
) -> None:
    """A directory on XFS (what an operator gives on a host that has it): no image made,
    nothing grown; a restore bigger than it fails as the disk being full, leaves nothing,
    and the space is given back."""
    (backups_dir / "huge.sql").write_text(  # about 2.3 GB once restored, the store 2 GiB
        "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 32) AS pad"
        " FROM generate_series(1, 2300000) g;\n"
    )
    own = xfs / "xfs" / "operator-store"
    with make_api(store=str(own)) as api:
        assert api.client.get("/healthz").json()["store"] == {
            "mode": "reflink",
            "path": str(own),
            "reason": None,
        }
        assert not (own / loop.STORE_IMAGE).exists()
        failed = api.create(expect="failed", backup="huge.sql")
        message = failed["error"]["message"].lower()
        assert "no space left on device" in message or "terminated" in message, message
        assert api.containers() == []
        assert (
            list((own / "instances" / api.services.manager.instance / "sandboxes").iterdir()) == []
        )
        again = api.create()
        api.delete(f"/v1/sandboxes/{again['id']}")


def test_a_store_image_short_of_space_is_grown_online(tmp_path: Path, mounted: list[Path]) -> None:
    from restorebox.storage.store import DataStore

    if os.geteuid() != 0:
        pytest.skip("loop mounts need root (scripts/test runs as root)")
    image, mountpoint = tmp_path / loop.STORE_IMAGE, tmp_path / "xfs"
    mounted.append(mountpoint)
    try:
        loop.ensure_mounted(image, mountpoint, 1024**3)
    except loop.LoopUnavailable as exc:
        pytest.skip(f"no XFS image can be mounted here: {exc}")
    store = DataStore(mountpoint, "grow", {}, image_file=image, mountpoint=mountpoint)
    (mountpoint / "kept").write_bytes(b"still here")
    store.ensure_free(3 * 1024**3)
    stats = os.statvfs(mountpoint)
    assert stats.f_bavail * stats.f_frsize >= 3 * 1024**3
    assert image.stat().st_size > 3 * 1024**3
    assert image.stat().st_blocks * 512 < 1024**3  # sparse: only what was written
    assert (mountpoint / "kept").read_bytes() == b"still here"


def test_a_relative_state_directory_gives_an_absolute_store(
    tmp_path: Path, mounted: list[Path], docker_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scripts/serve` keeps its state in ./.restorebox: the engine mounts data directories
    by path, and takes a relative one for a volume name."""
    from restorebox.settings import Settings
    from restorebox.storage.opening import open_store
    from tests.integration.runtime.test_runtime_contract import spec

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESTOREBOX_STORE", raising=False)
    mounted.append(tmp_path / ".restorebox" / "store" / "xfs")
    runtime, state = open_store(Settings(state_dir=Path(".restorebox")), docker_runtime, "rel")
    if state.mode == "overlay":
        pytest.skip(f"no store here: {state.reason}")
    assert state.path == str(tmp_path / ".restorebox" / "store" / "xfs")
    container = runtime.start(spec("relative"))
    try:
        assert container.endpoint is not None
        assert container.labels[L.DATA_DIR].startswith(str(tmp_path))
    finally:
        runtime.remove(container.id)
