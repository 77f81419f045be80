from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from restorebox.api.deps import ManagerDep, PrincipalDep, ServicesDep
from restorebox.api.schemas import (
    CreateSandbox,
    ReportOut,
    ResetSandbox,
    SandboxList,
    SandboxOut,
    SaveSnapshot,
    SnapshotOut,
    UpdateSandbox,
)
from restorebox.errors import InvalidRequest
from restorebox.lifecycle.records import CreateRequest
from restorebox.probes.catalog import PROBES

router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"])

WAIT_POLL_SECONDS = 0.02  # a dict lookup per poll: cheap, and a ready sandbox answers at once


@router.post(
    "",
    response_model=SandboxOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={201: {"model": SandboxOut, "description": "made: ready or failed (wait=true)"}},
)
async def create_sandbox(
    body: CreateSandbox, services: ServicesDep, principal: PrincipalDep, response: Response
) -> SandboxOut:
    """Start a sandbox, restoring `backup` into it when given.

    202 at once (poll GET for progress). With `wait: true`, 201 once it is ready or failed,
    or 202 with its current state when `RESTOREBOX_MAX_WAIT_SECONDS` pass first. Waiting
    holds no worker thread, so any number of waiting clients never starve other routes."""
    probes = None if body.probes is None else ([] if body.probes == "none" else body.probes)
    if probes:
        unknown = sorted(set(probes) - set(PROBES))
        if unknown:
            raise InvalidRequest(
                f"unknown probes: {', '.join(unknown)}; known: " + ", ".join(sorted(PROBES))
            )
    request = CreateRequest(
        ttl_seconds=body.ttl_seconds,
        postgres=int(body.postgres) if body.postgres is not None else None,
        backups=body.backups(),
        database=body.database,
        on_error=body.on_error,
        probes=probes,
        assertions=body.assertions,
        keep_on_failure=body.keep_on_failure,
        owner=principal.name,
        profile=body.profile,
        snapshot=body.snapshot,
        fresh=body.fresh,
        keep_snapshot=body.keep_snapshot,
        masking=body.masking,
    )
    manager = services.manager
    sandbox = await run_in_threadpool(manager.create, request)
    response.headers["Location"] = f"/v1/sandboxes/{sandbox.id}"
    if body.wait:
        sandbox = await _settled(services, sandbox.id, response, status.HTTP_201_CREATED)
    return SandboxOut.of(sandbox)


async def _settled(services: Any, sandbox_id: str, response: Response, done_status: int) -> Any:
    """Wait (holding no thread) until no worker holds the sandbox, within the limit."""
    manager = services.manager
    deadline = time.monotonic() + services.settings.max_wait_seconds
    while not manager.is_settled(sandbox_id) and time.monotonic() < deadline:
        await asyncio.sleep(WAIT_POLL_SECONDS)
    sandbox = await run_in_threadpool(manager.get, sandbox_id)
    if manager.is_settled(sandbox_id):
        response.status_code = done_status
    return sandbox


@router.post(
    "/{sandbox_id}/reset",
    response_model=SandboxOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": SandboxOut, "description": "reset done (wait=true)"}},
)
async def reset_sandbox(
    sandbox_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    response: Response,
    body: ResetSandbox | None = None,
) -> SandboxOut:
    """Back to the restored state in about a second, keeping the connection URL (user,
    password, host, port): a connected application just reconnects."""
    sandbox = await run_in_threadpool(services.manager.reset, sandbox_id, principal)
    if body is not None and body.wait:
        sandbox = await _settled(services, sandbox_id, response, status.HTTP_200_OK)
    return SandboxOut.of(sandbox)


@router.post("/{sandbox_id}/snapshot", response_model=SnapshotOut, status_code=201)
def save_snapshot(
    sandbox_id: str, body: SaveSnapshot, manager: ManagerDep, principal: PrincipalDep
) -> SnapshotOut:
    """Keep the sandbox's current state under a name; `{"snapshot": name}` copies it."""
    return SnapshotOut.of(manager.save_snapshot(sandbox_id, body.name, principal))


@router.get("", response_model=SandboxList)
def list_sandboxes(manager: ManagerDep, principal: PrincipalDep, all: bool = False) -> SandboxList:
    """Your live sandboxes (an admin sees everyone's); `?all=true` adds deleted and
    expired ones."""
    sandboxes = manager.list_all(include_gone=all, principal=principal)
    return SandboxList(sandboxes=[SandboxOut.of(s) for s in sandboxes])


@router.get("/{sandbox_id}", response_model=SandboxOut)
def get_sandbox(sandbox_id: str, manager: ManagerDep, principal: PrincipalDep) -> SandboxOut:
    return SandboxOut.of(manager.get(sandbox_id, principal))


@router.get("/{sandbox_id}/report", response_model=ReportOut)
def get_report(sandbox_id: str, manager: ManagerDep, principal: PrincipalDep) -> ReportOut:
    """The full restore and probe report."""
    return ReportOut.model_validate(manager.get(sandbox_id, principal))


@router.patch("/{sandbox_id}", response_model=SandboxOut)
def update_sandbox(
    sandbox_id: str, body: UpdateSandbox, manager: ManagerDep, principal: PrincipalDep
) -> SandboxOut:
    """Extend the TTL (counted from now, within the maximum) or protect from expiry."""
    return SandboxOut.of(manager.patch(sandbox_id, body.ttl_seconds, body.protected, principal))


@router.delete("/{sandbox_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_sandbox(sandbox_id: str, manager: ManagerDep, principal: PrincipalDep) -> Response:
    """Remove the sandbox's container and everything in it."""
    manager.delete(sandbox_id, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
