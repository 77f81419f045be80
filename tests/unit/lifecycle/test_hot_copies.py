"""Hot copies' rules on a real state store with a stand-in for making a copy: a claim
turns a ready copy into the requested sandbox (once, within the limit, announced as made),
the pool refills when creates pause, follows the snapshot copied last, and lets go of a
snapshot's copies before it goes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from restorebox.errors import TooManySandboxes
from restorebox.lifecycle.hot_copies import HotCopies
from restorebox.lifecycle.store import Store
from restorebox.lifecycle.transitions import Transitions
from restorebox.models import Sandbox, Snapshot, Status, utcnow
from restorebox.runtime import made_ahead


def snapshot(snapshot_id: str) -> Snapshot:
    return Snapshot(id=snapshot_id, image=f"img:{snapshot_id}", size_bytes=1, postgres_version=17,
                    database="app")  # fmt: skip


def wait_for(
    condition: Callable[[], bool], timeout: float = 5.0, message: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out {message()}"
        time.sleep(0.01)


class Pool:
    """HotCopies over a real store; ``made`` and ``discarded`` record the callbacks."""

    def __init__(self, tmp_path: Path, size: int = 2, limit: int = 10) -> None:
        self.store = Store(tmp_path / "state.sqlite3")
        self.transitions = Transitions(self.store)
        self.events: list[tuple[Status, Status, str]] = []
        self.transitions.subscribe(lambda b, a: self.events.append((b.status, a.status, a.id)))
        self.made: list[tuple[str, str]] = []
        self.discarded: list[str] = []
        self.lock = threading.Lock()
        self.hot = HotCopies(size, self.transitions, limit, self.make, self.discard)

    def make(self, snap: Snapshot, sandbox_id: str) -> None:
        now = utcnow()
        self.store.put(
            Sandbox(
                id=sandbox_id,
                status=Status.READY,
                hot=True,
                postgres_version=17,
                image="img",
                created_at=now,
                expires_at=now + timedelta(days=7),
                password=f"pw-{sandbox_id}",
                port=5000 + len(self.made),
                snapshot_id=snap.id,
                from_snapshot=True,
            )
        )
        with self.lock:
            self.made.append((snap.id, sandbox_id))

    def discard(self, sandbox_id: str) -> None:
        sandbox = self.store.get(sandbox_id)
        self.store.put(sandbox.model_copy(update={"status": Status.DELETED}))
        with self.lock:
            self.discarded.append(sandbox_id)

    def request(self, owner: str = "alice", ttl: int = 600) -> Sandbox:
        now = utcnow()
        return Sandbox(id="unused", status=Status.CREATING, owner=owner, postgres_version=17,
                       image="img", created_at=now, expires_at=now + timedelta(seconds=ttl),
                       backups=["app.sql"])  # fmt: skip


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    monkeypatch.setattr(made_ahead, "QUIET_SECONDS", 0.05)
    made = Pool(tmp_path)
    yield made
    made.hot.close()


def test_a_claim_turns_a_ready_copy_into_the_requested_sandbox(pool: Pool) -> None:
    s1 = snapshot("s1")
    assert pool.hot.claim(s1, pool.request()) is None  # nothing started yet: copy as usual
    wait_for(lambda: pool.hot.ready_for("s1") == 2)
    request = pool.request(owner="alice", ttl=600)
    claimed = pool.hot.claim(s1, request)
    assert claimed is not None
    assert (claimed.owner, claimed.expires_at, claimed.backups) == (
        "alice", request.expires_at, ["app.sql"]
    )  # fmt: skip
    assert not claimed.hot
    assert claimed.status == Status.READY
    assert claimed.ready_at
    assert claimed.password == f"pw-{claimed.id}"  # its own, made with it
    assert pool.store.get(claimed.id) == claimed
    # Announced as a sandbox made at once; the hot copy's own making was never announced.
    assert pool.events == [(Status.CREATING, Status.READY, claimed.id)]
    other = pool.hot.claim(s1, pool.request())
    assert other is not None
    assert other.id != claimed.id
    wait_for(lambda: pool.hot.ready_for("s1") == 2)  # refilled once creates paused
    assert len(pool.made) == 4


def test_a_copy_is_claimed_once_and_within_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(made_ahead, "QUIET_SECONDS", 0.05)
    limited = Pool(tmp_path, size=3, limit=1)
    try:
        s1 = snapshot("s1")
        limited.hot.claim(s1, limited.request())
        wait_for(lambda: limited.hot.ready_for("s1") == 3)
        assert limited.hot.claim(s1, limited.request()) is not None  # hot copies do not count
        with pytest.raises(TooManySandboxes):
            limited.hot.claim(s1, limited.request())
        wait_for(lambda: len(limited.discarded) == 1)  # the one it took is nobody's: removed
        [taken] = limited.discarded
        assert limited.store.get(taken).status == Status.DELETED
    finally:
        limited.hot.close()


def test_a_copy_that_failed_while_it_waited_is_skipped(pool: Pool) -> None:
    s1 = snapshot("s1")
    pool.hot.claim(s1, pool.request())
    wait_for(lambda: pool.hot.ready_for("s1") == 2)
    first, second = (sandbox_id for _, sandbox_id in pool.made)
    failed = pool.store.get(first).model_copy(update={"status": Status.FAILED})
    pool.store.put(failed)  # the reconciler saw its container vanish
    claimed = pool.hot.claim(s1, pool.request())
    assert claimed is not None
    assert claimed.id == second


def test_the_pool_follows_the_snapshot_copied_last(pool: Pool) -> None:
    pool.hot.claim(snapshot("s1"), pool.request())
    wait_for(lambda: pool.hot.ready_for("s1") == 2)
    assert pool.hot.claim(snapshot("s2"), pool.request()) is None
    kept = pool.hot.claim(snapshot("s1"), pool.request())  # alternating: s1 keeps them
    assert kept is not None
    assert pool.hot.claim(snapshot("s2"), pool.request()) is None
    assert pool.discarded == []
    assert pool.hot.claim(snapshot("s2"), pool.request()) is None  # twice in a row: moves

    def old() -> set[str]:
        return {i for s, i in pool.made if s == "s1"} - {kept.id}

    wait_for(lambda: set(pool.discarded) == old())  # the old snapshot's copies are removed
    wait_for(lambda: pool.hot.ready_for("s2") == 2)
    assert pool.hot.ready_for("s1") == 0


def test_a_snapshot_about_to_go_takes_its_copies_first(pool: Pool) -> None:
    pool.hot.claim(snapshot("s1"), pool.request())
    wait_for(lambda: pool.hot.ready_for("s1") == 2)
    pool.hot.release("s1")  # returns once they are gone
    assert sorted(pool.discarded) == sorted(sandbox_id for _, sandbox_id in pool.made)
    assert pool.hot.ready_for("s1") == 0


def test_hot_copies_no_pool_holds_are_leftovers(pool: Pool) -> None:
    pool.hot.claim(snapshot("s1"), pool.request())
    wait_for(lambda: pool.hot.ready_for("s1") == 2)
    pool.make(snapshot("s1"), "crashed00001")  # one a previous run left behind
    live = pool.store.list()
    assert pool.hot.leftovers(live) == ["crashed00001"]
    assert pool.discarded == ["crashed00001"]
    assert pool.hot.ready_for("s1") == 2


def test_hot_copies_do_not_occupy_slots(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    now = utcnow()
    hot = Sandbox(id="h", status=Status.READY, hot=True, postgres_version=17, image="img",
                  created_at=now, expires_at=now)  # fmt: skip
    store.put(hot)
    assert store.insert_if_below(hot.model_copy(update={"id": "a", "hot": False}), 1)
    assert not store.insert_if_below(hot.model_copy(update={"id": "b", "hot": False}), 1)
