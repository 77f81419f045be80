"""What makes a reset take a fraction of a second: the next container made ahead on the
sandbox's anchor while it is idle, the old one stopped at once and deleted later."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import docker.errors

from restorebox.runtime.base import ContainerSpec
from restorebox.runtime.docker.anchors import (
    STANDBY_LABEL,
    Anchor,
    Anchors,
    anchor_id_of,
    is_standby,
)
from restorebox.runtime.docker.engine import Engine

log = logging.getLogger("restorebox.runtime")

DELETE_OLD_AFTER = 2.0  # seconds without a start: deleting competes with starts for CPU
PREPARE_AFTER = 1.0  # seconds without a start before a reset's container is made ahead
# Creates a container with its secret files on an anchor: (spec, anchor, name) -> its id.
CreateFilled = Callable[[ContainerSpec, Anchor, str], str]


@dataclass(frozen=True)
class Prepared:
    """A reset's container made ahead: for which spec, on which anchor."""

    spec: ContainerSpec
    id: str
    anchor_id: str


@dataclass(frozen=True)
class Replaced:
    """A reset's old container: its anchor (None if it had none or it died)."""

    id: str
    anchor: Anchor | None
    running: bool


class Resets:
    """Containers prepared for the next reset, and replaced ones awaiting deletion."""

    def __init__(self, engine: Engine, anchors: Anchors, create_filled: CreateFilled) -> None:
        self._engine = engine
        self._anchors = anchors
        self._create_filled = create_filled
        self._lock = threading.Lock()
        self._prepared: dict[str, Prepared] = {}  # sandbox container name -> its next
        self._retired: set[str] = set()  # reset containers replaced, deleted soon

    def replaced(self, container_id: str) -> Replaced | None:
        """A reset's old container, and its anchor (port included) for the new one."""
        engine = self._engine
        try:
            attrs = engine.call(engine.client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        anchor_id = anchor_id_of(attrs)
        anchor = self._anchors.inspect(anchor_id) if anchor_id else None
        running = bool((attrs.get("State") or {}).get("Running"))
        if anchor is None or not anchor.running:
            return Replaced(str(attrs["Id"]), None, running)
        return Replaced(str(attrs["Id"]), self._anchors.hold(anchor), running)

    def delete_later(self, container_id: str) -> None:
        """Delete a reset's old container on a thread, once no start has begun for a
        moment; the reconciler removes it if the service stops first (no record names
        it)."""
        with self._lock:
            self._retired.add(container_id)

        def delete() -> None:
            time.sleep(DELETE_OLD_AFTER)
            self._engine.wait_for_quiet(DELETE_OLD_AFTER)
            self._engine.remove_quietly(container_id)
            with self._lock:
                self._retired.discard(container_id)

        threading.Thread(target=delete, name="remove-old", daemon=True).start()

    def prepare(self, spec: ContainerSpec) -> None:
        """A reset's container, created (not started) on the sandbox's anchor once the
        engine is quiet: the reset then only starts it. Kept out of listings until it
        runs; removed with the sandbox."""
        if spec.replaces is None:
            return
        current = spec.replaces
        engine = self._engine

        def make() -> None:
            engine.wait_for_quiet(PREPARE_AFTER)
            try:
                attrs = engine.call(engine.client.api.inspect_container, current)
                anchor_id = anchor_id_of(attrs)
                if anchor_id is None or not (attrs.get("State") or {}).get("Running"):
                    return
                standby = replace(spec, labels={**spec.labels, STANDBY_LABEL: "true"})
                name = f"{spec.name}-{secrets.token_hex(3)}"
                made = self._create_filled(standby, Anchor(anchor_id, "", None), name)
            except Exception:  # only a head start lost: the reset makes its own
                log.debug("could not prepare a reset's container", exc_info=True)
                return
            with self._lock:
                previous = self._prepared.pop(spec.name, None)
                self._prepared[spec.name] = Prepared(replace(spec, replaces=None), made, anchor_id)
            if previous is not None:
                engine.remove_quietly(previous.id)

        threading.Thread(target=make, name="prepare", daemon=True).start()

    def take_prepared(self, spec: ContainerSpec, anchor: Anchor | None) -> str | None:
        """The container prepared for exactly this start, on this anchor, if any."""
        with self._lock:
            prepared = self._prepared.pop(spec.name, None)
        if prepared is None:
            return None
        same = prepared.spec == replace(spec, replaces=None)
        if anchor is None or prepared.anchor_id != anchor.id or not same:
            threading.Thread(
                target=self._engine.remove_quietly, args=(prepared.id,), daemon=True
            ).start()
            return None
        return prepared.id

    def waiting(self, row: dict[str, Any]) -> bool:
        """Whether a listed container only waits on its anchor (prepared, never started;
        or replaced, not deleted yet): it goes with the sandbox's last container."""
        with self._lock:
            return is_standby(row) or row["Id"] in self._retired

    def forget(self, container_id: str) -> None:
        """A waiting container removed with its sandbox is nobody's next reset."""
        with self._lock:
            for name, prepared in list(self._prepared.items()):
                if prepared.id == container_id:
                    del self._prepared[name]
