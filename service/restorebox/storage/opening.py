"""Which store a service gets, decided once at start: a directory whose filesystem clones
files as it is; otherwise a sparse XFS image loop-mounted there; otherwise none (the
overlay path: each sandbox's data in its container's layer, snapshots as images), with
the reason in the log and ``/healthz``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from restorebox.runtime import DataDirRuntime, Runtime
from restorebox.runtime import labels as L
from restorebox.settings import Settings
from restorebox.storage import loop
from restorebox.storage.reflink import cannot_clone
from restorebox.storage.runtime import StoreRuntime
from restorebox.storage.store import DataStore

log = logging.getLogger("restorebox.storage")

MOUNTPOINT = "xfs"


@dataclass(frozen=True)
class StoreState:
    """What ``/healthz`` says of the store: ``mode`` is "reflink" (a filesystem that clones,
    used as it is), "xfs-loop" (an image restorebox made and mounted) or "overlay" (no
    store; ``reason`` says why)."""

    mode: str
    path: str | None = None
    reason: str | None = None


def open_store(
    settings: Settings, runtime: Runtime, instance: str, *, create: bool = True
) -> tuple[Runtime, StoreState]:
    """The runtime sandboxes are made with (the store's, or the engine's own) and what
    was decided. ``create=False`` (``restorebox gc``) opens a store that exists and never
    makes one."""
    try:
        store, state = _open(settings, runtime, instance, create)
    except OSError as exc:
        store, state = None, StoreState("overlay", reason=f"the store failed to open: {exc}")
    if store is None:
        log.warning(
            "no store: sandboxes use the overlay path (copies pay a copy-up on first read)",
            extra={"reason": state.reason},
        )
        return runtime, state
    assert isinstance(runtime, DataDirRuntime)
    log.info("store ready", extra={"mode": state.mode, "path": state.path})
    return StoreRuntime(runtime, store), state


def _open(
    settings: Settings, runtime: Runtime, instance: str, create: bool
) -> tuple[DataStore | None, StoreState]:
    if settings.store.strip().lower() in ("off", "none", "overlay"):
        return None, StoreState("overlay", reason="turned off (RESTOREBOX_STORE=off)")
    if not isinstance(runtime, DataDirRuntime):
        return None, StoreState("overlay", reason="the runtime cannot mount data directories")
    if why := runtime.cannot_mount_host_paths():
        return None, StoreState("overlay", reason=why)
    if os.geteuid() != 0:
        return None, StoreState(
            "overlay", reason="the service does not run as root (clones keep their owners)"
        )
    # Absolute: the engine mounts data directories by their path (a relative one would be
    # taken for a volume name), and the state directory is often relative (.restorebox).
    path = settings.store_path.resolve()
    image, mountpoint = path / loop.STORE_IMAGE, path / MOUNTPOINT
    if not create and not (path / "instances").is_dir() and not image.exists():
        return None, StoreState("overlay", reason=f"no store at {path}")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home = L.home(settings.state_dir)
    if cannot_clone(path) is None:
        return DataStore(path, instance, home), StoreState("reflink", str(path))
    try:
        loop.ensure_mounted(image, mountpoint, settings.store_size_bytes)
    except loop.LoopUnavailable as exc:
        why = f"{cannot_clone(path)}, and no XFS image could be mounted there: {exc}"
        return None, StoreState("overlay", reason=why)
    if why := cannot_clone(mountpoint):
        return None, StoreState("overlay", reason=why)
    store = DataStore(mountpoint, instance, home, image_file=image, mountpoint=mountpoint)
    return store, StoreState("xfs-loop", str(mountpoint))
