"""The dashboard: static files served by the service itself at `/ui`.

The files hold no data and need no token; the page asks the API with the token the user
gives it (from the URL fragment, which browsers never send to a server, or a form)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import RedirectResponse

router = APIRouter(include_in_schema=False)

FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "drills.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> Response:
    if name not in FILES:
        raise HTTPException(404, f"no dashboard file {name!r}")
    content = resources.files("restorebox").joinpath("ui", name).read_bytes()
    return Response(content, media_type=FILES[name], headers=HEADERS)


@router.get("/ui")
async def dashboard() -> Response:
    return _file("index.html")


@router.get("/ui/")
async def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui/static/{name}")
async def dashboard_file(name: str) -> Response:
    return _file(name)
