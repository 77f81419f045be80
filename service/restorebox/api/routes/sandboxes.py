from __future__ import annotations

from fastapi import APIRouter, Response, status

from ...errors import InvalidRequest
from ...probes.catalog import PROBES
from ...sandboxes import CreateRequest
from ..deps import Authenticated, ManagerDep, ServicesDep
from ..schemas import CreateSandbox, ReportOut, SandboxList, SandboxOut, UpdateSandbox

router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"], dependencies=Authenticated)


@router.post(
    "",
    response_model=SandboxOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={201: {"model": SandboxOut, "description": "made (wait=true)"}},
)
def create_sandbox(body: CreateSandbox, services: ServicesDep, response: Response) -> SandboxOut:
    """Start a sandbox, restoring `backup` into it when given.

    202 at once (poll GET for progress), or with `wait: true`, 201 when it is ready or failed."""
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
    )
    manager = services.manager
    sandbox = manager.create(request)
    response.headers["Location"] = f"/v1/sandboxes/{sandbox.id}"
    if body.wait:
        sandbox = manager.wait(sandbox.id)
        response.status_code = status.HTTP_201_CREATED
    return SandboxOut.of(sandbox)


@router.get("", response_model=SandboxList)
def list_sandboxes(manager: ManagerDep, all: bool = False) -> SandboxList:
    """Live sandboxes; `?all=true` includes deleted and expired ones."""
    return SandboxList(sandboxes=[SandboxOut.of(s) for s in manager.list_all(include_gone=all)])


@router.get("/{sandbox_id}", response_model=SandboxOut)
def get_sandbox(sandbox_id: str, manager: ManagerDep) -> SandboxOut:
    return SandboxOut.of(manager.get(sandbox_id))


@router.get("/{sandbox_id}/report", response_model=ReportOut)
def get_report(sandbox_id: str, manager: ManagerDep) -> ReportOut:
    """The full restore and probe report."""
    return ReportOut.model_validate(manager.get(sandbox_id))


@router.patch("/{sandbox_id}", response_model=SandboxOut)
def update_sandbox(sandbox_id: str, body: UpdateSandbox, manager: ManagerDep) -> SandboxOut:
    """Extend the TTL (counted from now, within the maximum) or protect from expiry."""
    return SandboxOut.of(manager.patch(sandbox_id, body.ttl_seconds, body.protected))


@router.delete("/{sandbox_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_sandbox(sandbox_id: str, manager: ManagerDep) -> Response:
    """Remove the sandbox's container and everything in it."""
    manager.delete(sandbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
