"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from restorebox import errors as E

log = logging.getLogger("restorebox.api")

STATUS_FOR: dict[type[E.RestoreboxError], int] = {
    E.InvalidRequest: 422,
    E.SandboxNotFound: 404,
    E.SandboxConflict: 409,
    E.SnapshotNotFound: 404,
    E.SnapshotInUse: 409,
    E.SnapshotFailed: 409,
    E.TooManySandboxes: 429,
    E.BackupNotFound: 404,
    E.InvalidBackupName: 400,
    E.UnsupportedBackup: 422,
    E.ExtensionUnavailable: 422,
    E.SeriesNotFound: 404,
    E.Forbidden: 403,
    E.DrillNotFound: 404,
    E.BackupTooLarge: 413,
    E.NoSuitablePostgres: 422,
    E.EngineUnavailable: 503,
    E.StateUnavailable: 503,
    E.IsolationUnverified: 503,
}


def status_for(exc: E.RestoreboxError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 500


def error_body(code: str, message: str, details: object | None = None) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = jsonable_encoder(details)
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(E.RestoreboxError)
    async def domain_error(request: Request, exc: E.RestoreboxError) -> JSONResponse:
        if isinstance(exc, E.EngineUnavailable):
            request.app.state.services.manager.metrics.engine_errors.inc()
        details = {k: v for k, v in exc.details.items() if k != "report"}
        return JSONResponse(error_body(exc.code, exc.message, details), status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        message = f"invalid request: {where}: {first['msg']}"
        return JSONResponse(error_body("validation_error", message, problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
        }
        return JSONResponse(
            error_body(codes.get(exc.status_code, f"http_{exc.status_code}"), str(exc.detail)),
            exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal", "internal error; see the service log"), 500)
