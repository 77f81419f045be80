"""API tokens and the principals they stand for.

``RESTOREBOX_API_TOKEN`` (or the token generated into the state directory when none is
configured) is the principal ``admin``. ``RESTOREBOX_API_TOKENS`` adds more: ``name=token``
is the principal ``name``; a bare token is another admin token (rotation).

A value is ``name=token`` only when what follows the first ``=`` is itself a token of at
least ``MIN_TOKEN_LENGTH`` characters: base64 tokens end in ``=`` (``openssl rand -base64``)
and are whole tokens. Shorter tokens are refused when the settings are read."""

from __future__ import annotations

import hmac
import os
import re
import secrets
from typing import TYPE_CHECKING

from restorebox.auth.principals import Principal
from restorebox.errors import StateUnavailable

if TYPE_CHECKING:
    from restorebox.settings import Settings

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_TOKEN_LENGTH = 16


def split_named(value: str) -> tuple[str | None, str]:
    """``"alice=<token>"`` -> ``("alice", "<token>")``; anything else is a whole token:
    ``"abc...xyz="`` -> ``(None, "abc...xyz=")``."""
    name, sep, token = value.partition("=")
    if sep and _NAME.fullmatch(name) and len(token) >= MIN_TOKEN_LENGTH:
        return name, token
    return None, value


def too_short(value: str) -> str | None:
    """Why a configured token is refused, or None when it is long enough."""
    name, token = split_named(value)
    if len(token) >= MIN_TOKEN_LENGTH:
        return None
    who = f"the token of {name!r}" if name else "a token"
    return (
        f"{who} is {len(token)} characters; tokens must be at least {MIN_TOKEN_LENGTH} "
        "(make one with: openssl rand -base64 24)"
    )


def load_or_create(settings: Settings) -> dict[str, Principal]:
    """Token -> principal for every accepted token. Generates and stores an admin token
    (mode 0600) when none is configured."""
    admins = set(settings.admins)
    tokens: dict[str, Principal] = {}
    if settings.api_token is not None:
        tokens[settings.api_token.get_secret_value()] = Principal("admin", admin=True)
    for secret in settings.api_tokens:
        value = secret.get_secret_value()
        name, token = split_named(value)
        if name is not None:
            tokens[token] = Principal(name, admin=name in admins)
        else:
            tokens[token] = Principal("admin", admin=True)
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
