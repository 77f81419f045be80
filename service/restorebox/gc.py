"""Operator garbage collection across instances (``restorebox gc``).

Every container restorebox makes carries its instance's id. The running service
reconciles its own instance only; containers of an instance whose state is gone (its
state directory deleted) would stay forever. ``gc`` lists every instance's containers and
removes:

* this instance's containers that its state does not hold as live (what the reconciler
  would remove);
* another instance's containers only when the operator names that instance: nothing here
  can tell a dead instance from a live one elsewhere, so a live instance's sandboxes are
  never touched unless someone says so.

Without ``remove=True`` it only reports."""

from __future__ import annotations

from dataclasses import dataclass

from .runtime import Runtime
from .runtime import labels as L
from .settings import Settings
from .store import LIVE, Store


@dataclass(frozen=True)
class Finding:
    instance: str
    sandbox: str
    container: str
    verdict: str  # "live", "stray", "other instance", "snapshot", "stray snapshot"
    removed: bool = False


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
    for container in runtime.list_managed({L.MANAGED: "true"}):
        instance = container.labels.get(L.INSTANCE, "?")
        sandbox = container.labels.get(L.SANDBOX, "?")
        if instance == mine:
            verdict = "live" if sandbox in live else "stray"
        elif instance in instances:
            verdict = "stray"
        else:
            verdict = "other instance"
        removed = False
        if remove and verdict == "stray":
            runtime.remove(container.id)
            removed = True
        findings.append(Finding(instance, sandbox, container.name, verdict, removed))
    kept_images: set[str] = set()
    if mine is not None and settings.snapshot_file.exists():
        from .snapshots import SnapshotStore

        snapshots = SnapshotStore(settings.snapshot_file)
        try:
            kept_images = {s.image for s in snapshots.list()}
        finally:
            snapshots.close()
    for instance in sorted(instances | ({mine} if mine else set())):
        for image in runtime.list_snapshots({L.MANAGED: "true", L.INSTANCE: instance}):
            stray = instance != mine or image not in kept_images
            removed = remove and stray and runtime.remove_snapshot(image)
            verdict = "stray snapshot" if stray else "snapshot"
            findings.append(Finding(instance, "-", image, verdict, removed))
    if remove:
        for instance in instances | ({mine} if mine else set()):
            keep = live if instance == mine else set()
            runtime.prune({L.MANAGED: "true", L.INSTANCE: instance}, keep)
    return findings
