"""API tokens: from settings, or generated on first start and kept in the state directory."""

from __future__ import annotations

import hmac
import os
import secrets

from .errors import StateUnavailable
from .settings import Settings


def load_or_create(settings: Settings) -> list[str]:
    """All accepted tokens. Generates and stores one (mode 0600) when none is configured."""
    tokens = [t.get_secret_value() for t in settings.api_tokens]
    if settings.api_token is not None:
        tokens.insert(0, settings.api_token.get_secret_value())
    if tokens:
        return tokens
    path = settings.token_file
    try:
        if path.exists():
            token = path.read_text().strip()
            if token:
                return [token]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise StateUnavailable(f"cannot read or write the API token file {path}: {exc}") from exc
    return [token]


def read_for_client(settings: Settings) -> str | None:
    """The token a CLI on this machine should send."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    try:
        return settings.token_file.read_text().strip() or None
    except OSError:
        return None


def matches(candidate: str, tokens: list[str]) -> bool:
    """Constant-time comparison against every accepted token."""
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(candidate.encode(), token.encode())
    return ok
