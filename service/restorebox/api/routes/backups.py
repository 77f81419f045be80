from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from restorebox.api.deps import Authenticated, CatalogDep
from restorebox.api.schemas import BackupInspecting, BackupList, BackupOut, UnreadableBackup
from restorebox.models import ErrorInfo

router = APIRouter(prefix="/v1/backups", tags=["backups"], dependencies=Authenticated)


@router.get("", response_model=BackupList)
def list_backups(catalog: CatalogDep) -> BackupList:
    """Every backup in the backups folder, described from its content. Backups not
    described yet are inspected in the background and listed under `inspecting`."""
    good, bad, pending = catalog.list()
    return BackupList(
        backups=[BackupOut.of(b) for b in good],
        unreadable=[
            UnreadableBackup(
                name=str(e.details.get("name", "?")),
                error=ErrorInfo(code=e.code, message=e.message),
            )
            for e in bad
        ],
        inspecting=pending,
    )


@router.get(
    "/{name:path}",
    response_model=BackupOut,
    responses={202: {"model": BackupInspecting, "description": "being inspected; ask again"}},
)
def get_backup(name: str, catalog: CatalogDep) -> Response | BackupOut:
    """One backup, described from its content; 202 while it is being inspected."""
    backup = catalog.known(name)
    if backup is None:
        body = BackupInspecting(name=name).model_dump()
        return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)
    return BackupOut.of(backup)
