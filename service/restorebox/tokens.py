"""API tokens and the principals they stand for.

``RESTOREBOX_API_TOKEN`` (or the token generated into the state directory when none is
configured) is the principal ``admin``. ``RESTOREBOX_API_TOKENS`` adds more: ``name=token``
is the principal ``name``; a bare token is another admin token (rotation)."""

from __future__ import annotations

import hmac
import os
import re
import secrets

from .errors import StateUnavailable
from .principals import Principal
from .settings import Settings

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def load_or_create(settings: Settings) -> dict[str, Principal]:
    """Token -> principal for every accepted token. Generates and stores an admin token
    (mode 0600) when none is configured."""
    admins = set(settings.admins)
    tokens: dict[str, Principal] = {}
    if settings.api_token is not None:
        tokens[settings.api_token.get_secret_value()] = Principal("admin", admin=True)
    for secret in settings.api_tokens:
        value = secret.get_secret_value()
        name, sep, token = value.partition("=")
        if sep and _NAME.fullmatch(name) and token:
            tokens[token] = Principal(name, admin=name in admins)
        else:
            tokens[value] = Principal("admin", admin=True)
    if tokens:
        return tokens
    return {_generated(settings): Principal("admin", admin=True)}


def _generated(settings: Settings) -> str:
    path = settings.token_file
    try:
        if path.exists():
            token = path.read_text().strip()
            if token:
                return token
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise StateUnavailable(f"cannot read or write the API token file {path}: {exc}") from exc
    return token


def read_for_client(settings: Settings) -> str | None:
    """The token a CLI on this machine should send."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    try:
        return settings.token_file.read_text().strip() or None
    except OSError:
        return None


def principal_for(candidate: str, tokens: dict[str, Principal]) -> Principal | None:
    """The principal of a presented token, compared in constant time against every one."""
    found: Principal | None = None
    for token, principal in tokens.items():
        if hmac.compare_digest(candidate.encode(), token.encode()):
            found = principal
    return found
