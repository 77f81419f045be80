from __future__ import annotations

from fastapi import APIRouter, Response, status

from restorebox.api.deps import ManagerDep, PrincipalDep
from restorebox.api.schemas import SnapshotList, SnapshotOut

router = APIRouter(prefix="/v1/snapshots", tags=["snapshots"])


@router.get("", response_model=SnapshotList)
def list_snapshots(manager: ManagerDep, principal: PrincipalDep) -> SnapshotList:
    """Cache snapshots (restored backups) and your named ones, each with the backups it
    holds, its size, and when it was made and last used."""
    snapshots = manager.list_snapshots(principal)
    usage = manager.runtime.storage_usage([s.image for s in snapshots])
    return SnapshotList(
        snapshots=[SnapshotOut.of(s, manager.hot.ready_for(s.id), usage) for s in snapshots]
    )


@router.get("/{ref}", response_model=SnapshotOut)
def get_snapshot(ref: str, manager: ManagerDep, principal: PrincipalDep) -> SnapshotOut:
    snapshot = manager.get_snapshot(ref, principal)
    usage = manager.runtime.storage_usage([snapshot.image])
    return SnapshotOut.of(snapshot, manager.hot.ready_for(snapshot.id), usage)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_snapshot(ref: str, manager: ManagerDep, principal: PrincipalDep) -> Response:
    """Remove a snapshot (409 while live sandboxes use it)."""
    manager.delete_snapshot(ref, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
