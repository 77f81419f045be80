"""Operator garbage collection across instances (``restorebox gc``).

Every container restorebox makes carries its instance's id. The running service
reconciles its own instance only; containers of an instance whose state is gone (its
state directory deleted) would stay forever. ``gc`` lists every instance's containers and
removes:

* this instance's containers that its state does not hold as live (what the reconciler
  would remove);
* containers and snapshot images of an instance that has vanished: their labels name this
  host and a state directory that no longer exists here, or holds another instance;
* store data directories and snapshots of this instance that nothing uses, a vanished
  instance's directory in a shared store, and a store image still mounted after its
  state directory was deleted;
* another instance's containers when the operator names that instance; any other
  instance is left alone (it may be live: on another host, or in a service container
  whose state directory this host cannot see).

Without ``remove=True`` it only reports."""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path

from restorebox.lifecycle.store import LIVE, Store
from restorebox.runtime import Runtime
from restorebox.runtime import labels as L
from restorebox.settings import Settings
from restorebox.storage import loop


@dataclass(frozen=True)
class Finding:
    instance: str
    sandbox: str
    container: str
    # "live", "stray", "vanished instance", "other instance", "snapshot", "stray snapshot"
    verdict: str
    removed: bool = False

    @property
    def removable(self) -> bool:
        return self.verdict in ("stray", "vanished instance", "stray snapshot")


def vanished(instance: str, labels: dict[str, str]) -> bool:
    """Whether what carries ``labels`` was made by ``instance`` on this host with a state
    directory that is gone (or now another instance's). Unknown origin: not vanished."""
    state_dir = labels.get(L.STATE_DIR)
    if not state_dir or labels.get(L.HOST) != socket.gethostname():
        return False
    try:
        return (Path(state_dir) / "instance-id").read_text().strip() != instance
    except FileNotFoundError:
        return True
    except OSError:  # unreadable: be safe
        return False


def own_instance(settings: Settings) -> str | None:
    """This state directory's instance id, without creating one."""
    path = settings.state_dir / "instance-id"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def collect(
    settings: Settings, runtime: Runtime, *, instances: set[str], remove: bool
) -> list[Finding]:
    mine = own_instance(settings)
    live: set[str] = set()
    if mine is not None and settings.database_file.exists():
        store = Store(settings.database_file)
        try:
            live = {s.id for s in store.list(set(LIVE))}
        finally:
            store.close()
    findings: list[Finding] = []
    gone: set[str] = set()  # vanished instances: their networks are pruned too
    for container in runtime.list_managed({L.MANAGED: "true"}):
        instance = container.labels.get(L.INSTANCE, "?")
        sandbox = container.labels.get(L.SANDBOX, "?")
        if instance == mine:
            verdict = "live" if sandbox in live else "stray"
        elif instance in instances:
            verdict = "stray"
        elif vanished(instance, container.labels):
            verdict = "vanished instance"
            gone.add(instance)
        else:
            verdict = "other instance"
        finding = Finding(instance, sandbox, container.name, verdict)
        if remove and finding.removable:
            runtime.remove(container.id)
            finding = replace(finding, removed=True)
        findings.append(finding)
    kept_images: set[str] = set()
    if mine is not None and settings.snapshot_file.exists():
        from restorebox.snapshots.store import SnapshotStore

        snapshots = SnapshotStore(settings.snapshot_file)
        try:
            kept_images = {s.image for s in snapshots.list()}
        finally:
            snapshots.close()
    named = instances | ({mine} if mine else set())
    for image in runtime.list_snapshots({L.MANAGED: "true"}):
        image_labels = runtime.image_labels(image)
        instance = image_labels.get(L.INSTANCE, "?")
        if instance not in named:
            if not vanished(instance, image_labels):
                continue  # another instance's, live as far as this host can tell
            gone.add(instance)
        stray = instance != mine or image not in kept_images
        removed = remove and stray and runtime.remove_snapshot(image)
        verdict = "stray snapshot" if stray else "snapshot"
        findings.append(Finding(instance, "-", image, verdict, removed))
    # Networks made ahead by an instance that died outside a sandbox's life: nothing else
    # of it may be left to tell it vanished.
    for name, labels in runtime.list_isolation({L.MANAGED: "true"}).items():
        instance = labels.get(L.INSTANCE, "?")
        if instance not in named | gone and vanished(instance, labels):
            gone.add(instance)
            findings.append(Finding(instance, "-", name, "vanished instance", remove))
    if remove:
        for instance in named | gone:
            keep = live if instance == mine else set()
            runtime.prune({L.MANAGED: "true", L.INSTANCE: instance}, keep)
    # A store image still mounted after its state directory was deleted.
    for mountpoint in loop.orphaned_mounts():
        removed = remove and loop.detach(mountpoint)
        findings.append(Finding("?", "-", str(mountpoint), "vanished instance", removed))
    return findings
