"""Live events: `GET /v1/sandboxes/{id}/events` as Server-Sent Events.

One event per change of status or progress (`event: status` or `event: progress`, the
data a `SandboxEvent` as JSON), a comment every 15 s to keep proxies from closing an idle
stream, and `event: end` once the sandbox is settled (ready, failed, deleted or expired),
after which the stream closes. A sandbox that is settled already gets its state and the
end at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from restorebox.api.deps import ManagerDep, PrincipalDep
from restorebox.api.schemas import SandboxEvent
from restorebox.errors import SandboxNotFound
from restorebox.models import Sandbox, Status

router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"])

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
SETTLED = {Status.READY, Status.FAILED, Status.DELETED, Status.EXPIRED}


def settled(sandbox: Sandbox) -> bool:
    return sandbox.status in SETTLED


def _frame(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


@router.get(
    "/{sandbox_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def sandbox_events(
    sandbox_id: str, request: Request, manager: ManagerDep, principal: PrincipalDep
) -> StreamingResponse:
    """Server-Sent Events for one sandbox until it is settled."""
    manager.get(sandbox_id, principal)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        last_status: Status | None = None
        last_payload = ""
        last_sent = time.monotonic()
        while True:
            try:
                sandbox = manager.get(sandbox_id, principal)
            except SandboxNotFound:
                return
            payload = SandboxEvent.model_validate(sandbox).model_dump_json()
            if payload != last_payload:
                kind = "status" if sandbox.status != last_status else "progress"
                yield _frame(kind, payload)
                last_status, last_payload, last_sent = sandbox.status, payload, time.monotonic()
            if settled(sandbox) and manager.is_settled(sandbox_id):
                yield _frame("end", payload)
                return
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
