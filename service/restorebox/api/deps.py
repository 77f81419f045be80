"""FastAPI dependencies: the service objects and the bearer-token check. All are async
(they do no I/O), so they never wait for a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from restorebox.auth.principals import Principal
from restorebox.auth.tokens import principal_for
from restorebox.backups import Catalog
from restorebox.drills.runner import DrillRunner
from restorebox.lifecycle.manager import SandboxManager
from restorebox.settings import Settings
from restorebox.storage.opening import StoreState


@dataclass
class Services:
    settings: Settings
    manager: SandboxManager
    catalog: Catalog
    tokens: dict[str, Principal]
    isolation: str  # lifecycle.isolation: "verified", or not verified and allowed
    drills: DrillRunner
    store: StoreState  # storage.opening: the store sandboxes use, or why none


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False, description="RESTOREBOX_API_TOKEN or <state>/api-token")


async def require_token(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    principal = principal_for(credentials.credentials, services.tokens)
    if principal is None:
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return principal


async def get_manager(services: ServicesDep) -> SandboxManager:
    return services.manager


async def get_catalog(services: ServicesDep) -> Catalog:
    return services.catalog


async def get_drills(services: ServicesDep) -> DrillRunner:
    return services.drills


ManagerDep = Annotated[SandboxManager, Depends(get_manager)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
DrillsDep = Annotated[DrillRunner, Depends(get_drills)]
PrincipalDep = Annotated[Principal, Depends(require_token)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Authenticated = [Depends(require_token)]
