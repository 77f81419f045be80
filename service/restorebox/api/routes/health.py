from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter

from restorebox import __version__
from restorebox.api.deps import ServicesDep
from restorebox.api.schemas import Health, StoreOut
from restorebox.errors import RestoreboxError
from restorebox.lifecycle.image_builds import ImageState

router = APIRouter()
# Its own thread and a short deadline: the health check answers at once even when every
# other worker thread is busy or the engine hangs.
_PING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
PING_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz(services: ServicesDep) -> Health:
    """Liveness, engine reachability and which sandbox images are ready. Needs no token
    and reveals nothing else."""

    def look() -> dict[str, ImageState]:
        services.manager.runtime.ping()
        builds = services.manager.provisioner.image_builds
        return {
            str(major): builds.state(image) for major, image in services.settings.images.items()
        }

    images: dict[str, ImageState] = {}
    try:
        future = asyncio.get_running_loop().run_in_executor(_PING, look)
        images = await asyncio.wait_for(future, PING_TIMEOUT_SECONDS)
        engine = "ok"
    except (RestoreboxError, TimeoutError):
        engine = "unavailable"
    return Health(
        status="ok" if engine == "ok" else "degraded",
        engine=engine,
        isolation=services.isolation,
        images=images,
        store=StoreOut.model_validate(services.store, from_attributes=True),
        version=__version__,
    )
