"""Things made ahead of time, so that starting a sandbox never waits for one.

An engine makes a sandbox's isolation one at a time (on Docker a bridge network, its
firewall rules and the published port's proxy): ten sandboxes asked for at once would
queue for seconds behind each other. A pool keeps ``size`` of them ready; a start takes
one (each still serves exactly one sandbox and is removed with it), and a thread makes
the next once starts have paused for a moment."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("restorebox.runtime")

RETRY_SECONDS = 1.0  # after a failed make; doubled on each failure in a row
RETRY_MAX_SECONDS = 60.0
# Refilled once starts have paused this long: making more while a burst of sandboxes
# starts would take the CPU those starts need.
QUIET_SECONDS = 1.0
T = TypeVar("T")


class MadeAhead(Generic[T]):
    """``create(name)`` makes one item named ``name``; ``remove(item)`` undoes it."""

    def __init__(
        self,
        create: Callable[[str], T],
        remove: Callable[[T], None],
        size: int,
        prefix: str = "restorebox-pool-",
        what: str = "a sandbox's isolation",
        wait_first: bool = False,
    ) -> None:
        """``wait_first``: the first is made after a quiet moment too (the pool is made
        during a burst), not at once."""
        self._what = what
        self._create = create
        self._remove = remove
        self._prefix = prefix
        self.size = size
        self._making: set[str] = set()
        self._ready: deque[tuple[str, T]] = deque()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._last_take = time.monotonic() if wait_first else 0.0
        self._thread = threading.Thread(target=self._fill, name="made-ahead", daemon=True)
        self._wanted.set()
        self._thread.start()

    def take(self) -> T | None:
        """A ready item, or None when none is (the caller makes its own)."""
        with self._lock:
            item = self._ready.popleft()[1] if self._ready else None
            self._last_take = time.monotonic()
        self._wanted.set()
        return item

    def ready(self) -> int:
        """How many are waiting to be taken."""
        with self._lock:
            return len(self._ready)

    def reserved(self) -> set[str]:
        """Names waiting in the pool or being made: not garbage, though nothing uses them."""
        with self._lock:
            return {name for name, _ in self._ready} | self._making

    def close(self) -> None:
        """Stop filling and remove what is still waiting."""
        self._stopped.set()
        self._wanted.set()
        self._thread.join(timeout=30)
        with self._lock:
            left, self._ready = list(self._ready), deque()
        for name, item in left:
            try:
                self._remove(item)
            except Exception:
                log.exception("could not remove what was made ahead", extra={"name": name})

    def _fill(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            self._wanted.wait()
            self._wanted.clear()  # before looking: a take() from now on wakes us again
            while not self._stopped.is_set():
                with self._lock:
                    quiet_in = self._last_take + QUIET_SECONDS - time.monotonic()
                if quiet_in > 0:
                    self._stopped.wait(quiet_in)
                    continue
                with self._lock:
                    if len(self._ready) >= self.size:
                        break
                    # Reserved by name before it exists: a prune running meanwhile
                    # never takes it for garbage.
                    name = f"{self._prefix}{secrets.token_hex(6)}"
                    self._making.add(name)
                try:
                    item = self._create(name)
                except Exception:
                    log.exception("could not make %s ahead; retrying", self._what)
                    with self._lock:
                        self._making.discard(name)
                    self._stopped.wait(min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2**failures))
                    failures += 1
                    continue
                failures = 0
                with self._lock:
                    self._making.discard(name)
                    self._ready.append((name, item))
