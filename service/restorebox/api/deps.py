"""FastAPI dependencies: the service objects and the bearer-token check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..backups import Catalog
from ..sandboxes import SandboxManager
from ..settings import Settings
from ..tokens import matches


@dataclass
class Services:
    settings: Settings
    manager: SandboxManager
    catalog: Catalog
    tokens: list[str]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False, description="RESTOREBOX_API_TOKEN or <state>/api-token")


def require_token(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not matches(credentials.credentials, services.tokens):
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def get_manager(services: ServicesDep) -> SandboxManager:
    return services.manager


def get_catalog(services: ServicesDep) -> Catalog:
    return services.catalog


ManagerDep = Annotated[SandboxManager, Depends(get_manager)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
Authenticated = [Depends(require_token)]
