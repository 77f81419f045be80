"""Isolated networks made ahead of time, so that starting a sandbox never waits for one.

An engine creates networks one at a time (on Docker each is a bridge and its firewall
rules): ten sandboxes asked for at once would queue for seconds behind each other's
network. A pool keeps ``size`` networks ready; a start takes one (each network still
serves exactly one sandbox and is removed with it), and a thread makes the next."""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("restorebox.runtime")

RETRY_SECONDS = 1.0


class NetworkPool:
    def __init__(
        self, create: Callable[[str], None], remove: Callable[[str], None], size: int
    ) -> None:
        self._create = create
        self._making: set[str] = set()
        self._remove = remove
        self.size = size
        self._ready: deque[str] = deque()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="network-pool", daemon=True)
        self._wanted.set()
        self._thread.start()

    def take(self) -> str | None:
        """A ready network, or None when none is (the caller makes its own)."""
        with self._lock:
            name = self._ready.popleft() if self._ready else None
        self._wanted.set()
        return name

    def reserved(self) -> set[str]:
        """Networks waiting in the pool: not garbage, though no container uses them."""
        with self._lock:
            return set(self._ready) | self._making

    def close(self) -> None:
        """Stop filling and remove the networks still waiting."""
        self._stopped.set()
        self._wanted.set()
        self._thread.join(timeout=30)
        with self._lock:
            left, self._ready = list(self._ready), deque()
        for name in left:
            try:
                self._remove(name)
            except Exception:
                log.exception("could not remove a pooled network", extra={"network": name})

    def _fill(self) -> None:
        while not self._stopped.is_set():
            self._wanted.wait()
            self._wanted.clear()  # before looking: a take() from now on wakes us again
            while not self._stopped.is_set():
                with self._lock:
                    if len(self._ready) >= self.size:
                        break
                    # Reserved by name before it exists: a prune running meanwhile
                    # never takes it for garbage.
                    name = f"restorebox-pool-{secrets.token_hex(6)}"
                    self._making.add(name)
                try:
                    self._create(name)
                except Exception:
                    log.exception("could not make a network ahead; retrying")
                    with self._lock:
                        self._making.discard(name)
                    self._stopped.wait(RETRY_SECONDS)
                    continue
                with self._lock:
                    self._making.discard(name)
                    self._ready.append(name)  # close() removes it if it came too late
