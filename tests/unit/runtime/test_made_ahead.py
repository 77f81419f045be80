"""The pool of things made ahead (Docker: anchors): filled at once, refilled only once
takes have paused, emptied on close."""

from __future__ import annotations

import threading
import time

import pytest

from restorebox.runtime import made_ahead
from restorebox.runtime.made_ahead import MadeAhead


def wait_for(condition: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_fills_then_refills_only_after_a_quiet_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(made_ahead, "QUIET_SECONDS", 0.3)
    made: list[str] = []
    removed: list[str] = []
    lock = threading.Lock()

    def create(name: str) -> str:
        with lock:
            made.append(name)
        return name

    pool = MadeAhead(create, removed.append, size=3, prefix="t-")
    try:
        wait_for(lambda: len(made) == 3)
        assert all(name.startswith("t-") for name in made)
        taken = [pool.take() for _ in range(3)]
        assert taken == made[:3]  # in the order they were made
        assert pool.take() is None  # empty: the caller makes its own
        time.sleep(0.15)
        assert len(made) == 3  # a burst is under way: nothing is made meanwhile
        wait_for(lambda: len(made) == 6)  # then it refills
    finally:
        pool.close()
    assert sorted(removed) == sorted(made[3:])  # what waited is removed, what was taken not


def test_a_failing_create_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(made_ahead, "RETRY_SECONDS", 0.05)
    attempts, made = [0], []

    def create(name: str) -> str:
        attempts[0] += 1
        if attempts[0] < 3:
            raise RuntimeError("engine hiccup")
        made.append(name)
        return name

    pool = MadeAhead(create, lambda _: None, size=1)
    try:
        wait_for(lambda: made)
        assert attempts[0] == 3
        wait_for(lambda: pool.reserved() == set(made))  # ready, no longer being made
        assert pool.take() == made[0]
    finally:
        pool.close()
