from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ...errors import RestoreboxError
from ..deps import ServicesDep
from ..schemas import Health

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz(services: ServicesDep) -> Health:
    """Liveness and engine reachability. Needs no token and reveals nothing else."""
    try:
        services.manager.runtime.ping()
        engine = "ok"
    except RestoreboxError:
        engine = "unavailable"
    return Health(
        status="ok" if engine == "ok" else "degraded",
        engine=engine,
        version=__version__,
    )
