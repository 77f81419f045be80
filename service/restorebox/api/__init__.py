"""The HTTP API (FastAPI), versioned under /v1."""

from restorebox.api.app import create_app

__all__ = ["create_app"]
