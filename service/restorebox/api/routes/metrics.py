"""Prometheus metrics: `GET /metrics` in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter, Response

from restorebox.api.deps import BearerDep, ServicesDep, require_token
from restorebox.notify.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep, credentials: BearerDep) -> Response:
    """Counters, histograms and gauges prefixed `restorebox_`. Needs the token unless
    `RESTOREBOX_METRICS_PUBLIC=true`."""
    if not services.settings.metrics_public:
        await require_token(services, credentials)
    return Response(services.manager.metrics.exposition(), media_type=CONTENT_TYPE)
