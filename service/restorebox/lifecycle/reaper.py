"""Background housekeeping: expire sandboxes past their TTL, reconcile with the engine."""

from __future__ import annotations

import logging
import threading

from restorebox.lifecycle.manager import SandboxManager

log = logging.getLogger("restorebox.lifecycle.reaper")

RECONCILE_EVERY = 5  # reaper ticks


class Reaper:
    def __init__(self, manager: SandboxManager, interval_seconds: float) -> None:
        self.manager = manager
        self.interval = interval_seconds
        # Until a start-up reconciliation succeeds (the engine may be down at start),
        # sandboxes left half-made by a crash are still to be cleaned.
        self.start_reconciled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            try:
                expired = self.manager.expire_due()
                if expired:
                    log.info("expired sandboxes", extra={"sandboxes": expired})
                if not self.start_reconciled:
                    self.manager.reconcile(at_start=True)
                    self.start_reconciled = True
                elif tick % RECONCILE_EVERY == 0:
                    self.manager.reconcile()
            except Exception:
                log.exception("reaper tick failed; retrying next tick")
