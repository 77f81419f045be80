"""Lifecycle rules on a fake runtime: limits, expiry, reconciliation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from restorebox.backups import Catalog
from restorebox.errors import SandboxConflict, TooManySandboxes
from restorebox.lifecycle.manager import SandboxManager
from restorebox.lifecycle.records import CreateRequest
from restorebox.lifecycle.store import Store
from restorebox.models import Sandbox, Status, utcnow
from restorebox.runtime import ContainerSpec
from restorebox.runtime import labels as L
from restorebox.settings import Settings
from tests.fakes import FakeRuntime


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def manager(tmp_path: Path, runtime: FakeRuntime) -> SandboxManager:
    settings = Settings(
        state_dir=tmp_path,
        backups_dir=tmp_path,
        max_sandboxes=2,
        ready_timeout_seconds=0.2,
        api_token="unit-test-token-0123",
    )
    store = Store(settings.database_file)
    return SandboxManager(settings, store, runtime, Catalog(tmp_path), "inst")


def record(
    manager: SandboxManager,
    runtime: FakeRuntime,
    status: Status,
    ttl: int = 60,
    with_container: bool = True,
) -> Sandbox:
    now = utcnow()
    sandbox = Sandbox(
        id=f"s{len(manager.store.list())}",
        status=status,
        postgres_version=17,
        image="img",
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    if with_container:
        c = runtime.start(
            ContainerSpec(
                "img",
                sandbox.id,
                {},
                L.for_sandbox("inst", sandbox.id, sandbox.expires_at.isoformat()),
            )
        )
        sandbox.container_id = c.id
        sandbox.port = c.endpoint.port if c.endpoint else None
    manager.store.put(sandbox)
    return sandbox


def test_limit_is_enforced_atomically(manager: SandboxManager) -> None:
    manager.create(CreateRequest())
    manager.create(CreateRequest())
    with pytest.raises(TooManySandboxes, match="2 sandboxes"):
        manager.create(CreateRequest())
    manager.shutdown()


def test_failed_provisioning_removes_its_container(
    manager: SandboxManager, runtime: FakeRuntime
) -> None:
    sandbox = manager.create(CreateRequest())
    done = manager.wait(sandbox.id, timeout=30)
    assert done.status == Status.FAILED
    assert done.error is not None
    assert done.error.code == "start_timeout"
    assert runtime.containers == {}


def test_expiry_removes_due_sandboxes_but_not_protected_ones(
    manager: SandboxManager, runtime: FakeRuntime
) -> None:
    due = record(manager, runtime, Status.READY, ttl=-1)
    kept = record(manager, runtime, Status.READY, ttl=-1)
    manager.patch(kept.id, ttl_seconds=None, protected=True)
    later = record(manager, runtime, Status.READY, ttl=3600)
    assert manager.expire_due() == [due.id]
    assert manager.get(due.id).status == Status.EXPIRED
    assert due.container_id not in runtime.containers
    assert kept.container_id in runtime.containers
    assert later.container_id in runtime.containers
    with pytest.raises(SandboxConflict):
        manager.patch(due.id, ttl_seconds=100, protected=None)


def test_reconcile_removes_strangers_and_marks_vanished(
    manager: SandboxManager, runtime: FakeRuntime
) -> None:
    stranger = runtime.start(ContainerSpec("img", "x", {}, L.for_sandbox("inst", "ghost", "")))
    other_instance = runtime.start(ContainerSpec("img", "y", {}, L.for_sandbox("other", "z", "")))
    killed = record(manager, runtime, Status.READY)
    assert killed.container_id is not None
    runtime.kill(killed.container_id)
    removed = record(manager, runtime, Status.READY)
    assert removed.container_id is not None
    runtime.remove(removed.container_id)
    healthy = record(manager, runtime, Status.READY)
    interrupted = record(manager, runtime, Status.RESTORING)

    outcome = manager.reconcile(at_start=True)

    assert stranger.id not in runtime.containers
    assert other_instance.id in runtime.containers  # another service's sandbox: not ours
    assert manager.get(killed.id).status == Status.FAILED
    assert manager.get(removed.id).error.code == "container_vanished"  # type: ignore[union-attr]
    assert manager.get(healthy.id).status == Status.READY
    assert manager.get(interrupted.id).status == Status.FAILED
    assert manager.get(interrupted.id).error.code == "interrupted"  # type: ignore[union-attr]
    assert interrupted.container_id not in runtime.containers
    assert set(outcome["failed"]) == {killed.id, removed.id, interrupted.id}


def test_reaper_retries_start_reconciliation_until_the_engine_answers(
    manager: SandboxManager, runtime: FakeRuntime
) -> None:
    import time

    from restorebox.errors import EngineUnavailable
    from restorebox.lifecycle.reaper import Reaper

    interrupted = record(manager, runtime, Status.RESTORING)
    real_list = runtime.list_managed
    calls = {"n": 0}

    def flaky(labels: dict[str, str]) -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise EngineUnavailable("engine down")
        return real_list(labels)

    runtime.list_managed = flaky  # type: ignore[method-assign]
    reaper = Reaper(manager, interval_seconds=0.05)
    reaper.start()
    try:
        deadline = time.monotonic() + 5
        while manager.get(interrupted.id).status != Status.FAILED:
            assert time.monotonic() < deadline, "start-up reconciliation was never retried"
            time.sleep(0.05)
    finally:
        reaper.stop()
    assert reaper.start_reconciled
    assert interrupted.container_id not in runtime.containers


@pytest.mark.parametrize(
    ("publish", "url_host", "connect", "in_url"),
    [
        ("127.0.0.1", None, "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", None, "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "db.example.internal", "127.0.0.1", "db.example.internal"),
        ("192.0.2.10", None, "192.0.2.10", "192.0.2.10"),
    ],
)
def test_connection_urls_name_a_host_clients_can_dial(
    tmp_path: Path, publish: str, url_host: str | None, connect: str, in_url: str
) -> None:
    # No sandbox is provisioned here: nothing connects to any of these addresses.
    settings = Settings(state_dir=tmp_path, publish_host=publish, url_host=url_host)
    assert settings.connect_host == connect
    now = utcnow()
    sandbox = Sandbox(
        id="s",
        status=Status.READY,
        postgres_version=17,
        image="img",
        created_at=now,
        expires_at=now,
        port=5555,
        password="pw",
        host=settings.connect_host,
        url_host=settings.url_host,
    )
    assert f"@{in_url}:5555/" in (sandbox.connection_url or "")


def aged(manager: SandboxManager, sandbox: Sandbox, seconds: int = 60) -> Sandbox:
    """The record as if last changed ``seconds`` ago (past every grace period)."""
    old = sandbox.model_copy(update={"updated_at": utcnow() - timedelta(seconds=seconds)})
    manager.store.put(old)
    return old


def test_a_ready_sandbox_is_failed_only_when_seen_gone_in_two_passes(
    manager: SandboxManager, runtime: FakeRuntime
) -> None:
    gone = aged(manager, record(manager, runtime, Status.READY))
    assert gone.container_id is not None
    runtime.kill(gone.container_id)
    first = manager.reconcile()
    assert gone.id not in first["failed"]  # a grace period: the engine may be mid-way
    assert manager.get(gone.id).status == Status.READY
    second = manager.reconcile()
    assert gone.id in second["failed"]
    assert manager.get(gone.id).error.code == "container_vanished"  # type: ignore[union-attr]


def test_a_held_sandbox_is_never_failed(manager: SandboxManager, runtime: FakeRuntime) -> None:
    """A snapshot being taken pauses the container: whatever the listing says, the
    reconciler leaves a held sandbox alone."""
    held = aged(manager, record(manager, runtime, Status.READY))
    assert held.container_id is not None
    with manager.transitions.held(held.id, "snapshot"):
        runtime.kill(held.container_id)
        for _ in range(3):
            assert held.id not in manager.reconcile()["failed"]
        assert manager.get(held.id).status == Status.READY
        with pytest.raises(SandboxConflict, match="snapshot"):
            manager.transitions.held(held.id, "snapshot").__enter__()
    assert manager.get(held.id).hold is None


def test_the_reconciler_decides_on_a_listing_newer_than_the_record(
    manager: SandboxManager, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset that finishes while the reconciler lists containers (a new container, the
    record pointing at it, the old one gone) is not failed on the stale listing."""
    sandbox = aged(manager, record(manager, runtime, Status.READY))
    assert sandbox.container_id is not None
    listing = runtime.list_managed

    def listed_then_reset(labels: dict[str, str]) -> list[Any]:
        seen = listing(labels)
        if L.SANDBOX not in labels:  # the reconciler's own listing, not a removal's
            new = runtime.start(
                ContainerSpec("img", f"{sandbox.id}-2", {}, L.for_sandbox("inst", sandbox.id, ""))
            )
            manager.transitions.update(sandbox.id, container_id=new.id)
            runtime.remove(sandbox.container_id)  # type: ignore[arg-type]
        return seen

    monkeypatch.setattr(runtime, "list_managed", listed_then_reset)
    for _ in range(2):
        assert sandbox.id not in manager.reconcile()["failed"]
        monkeypatch.setattr(runtime, "list_managed", listing)
    assert manager.get(sandbox.id).status == Status.READY


def test_expiry_reads_each_sandbox_again_before_acting(
    manager: SandboxManager, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extend or `protected` set after the reaper read its list wins over the expiry."""
    extended = record(manager, runtime, Status.READY, ttl=-1)
    protected = record(manager, runtime, Status.READY, ttl=-1)
    listing = manager.store.list

    def listed_then_changed(statuses: Any = None) -> list[Sandbox]:
        seen = listing(statuses)
        manager.patch(extended.id, ttl_seconds=3600, protected=None)
        manager.patch(protected.id, ttl_seconds=None, protected=True)
        return seen

    monkeypatch.setattr(manager.store, "list", listed_then_changed)
    assert manager.expire_due() == []
    monkeypatch.setattr(manager.store, "list", listing)
    assert manager.get(extended.id).status == Status.READY
    assert manager.get(protected.id).status == Status.READY


def test_a_ready_sandbox_past_its_disk_bound_is_stopped_and_reported(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        backups_dir=tmp_path,
        sandbox_disk_bytes=100 * 1024**2,
        api_token="unit-test-token-0123",
    )
    manager = SandboxManager(
        settings, Store(settings.database_file), runtime, Catalog(tmp_path), "inst"
    )
    over = record(manager, runtime, Status.READY)
    under = record(manager, runtime, Status.READY)
    held = record(manager, runtime, Status.READY)
    for sandbox, written in ((over, 150), (under, 50), (held, 500)):
        assert sandbox.container_id is not None
        runtime.written[sandbox.container_id] = written * 1024**2
    told: list[str] = []
    manager.transitions.subscribe(lambda before, after: told.append(after.status.value))
    with manager.transitions.held(held.id, "snapshot"):
        outcome = manager.reconcile()
    assert outcome["failed"] == [over.id]
    stopped = manager.get(over.id)
    assert stopped.status == Status.FAILED
    assert stopped.error is not None
    assert stopped.error.code == "disk_limit"
    assert "150 MB" in stopped.error.message
    assert "RESTOREBOX_SANDBOX_DISK_BYTES" in stopped.error.message
    assert over.container_id not in runtime.containers
    assert told == ["failed"]  # what webhooks and metrics hear
    failures = manager.metrics.registry.get_sample_value(
        "restorebox_sandbox_failures_total", {"reason": "disk_limit"}
    )
    assert failures == 1
    assert manager.get(under.id).status == Status.READY
    assert manager.get(held.id).status == Status.READY  # a snapshot was being taken
