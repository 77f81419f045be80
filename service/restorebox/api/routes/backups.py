from __future__ import annotations

from fastapi import APIRouter

from ...errors import UnsupportedBackup
from ...models import ErrorInfo
from ..deps import Authenticated, CatalogDep
from ..schemas import BackupList, BackupOut, UnreadableBackup

router = APIRouter(prefix="/v1/backups", tags=["backups"], dependencies=Authenticated)


@router.get("", response_model=BackupList)
def list_backups(catalog: CatalogDep) -> BackupList:
    """Every backup in the backups folder, described from its content."""
    good, bad = [], []
    for item in catalog.list():
        if isinstance(item, UnsupportedBackup):
            bad.append(
                UnreadableBackup(
                    name=item.details.get("name", "?"),
                    error=ErrorInfo(code=item.code, message=item.message),
                )
            )
        else:
            good.append(BackupOut.of(item))
    return BackupList(backups=good, unreadable=bad)


@router.get("/{name:path}", response_model=BackupOut)
def get_backup(name: str, catalog: CatalogDep) -> BackupOut:
    return BackupOut.of(catalog.get(name))
