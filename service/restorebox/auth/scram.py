"""SCRAM-SHA-256 password verifiers, as PostgreSQL stores them (``pg_authid.rolpassword``).

A copy of a snapshot is told its new password as a verifier in its environment, not as
a file copied in: copying a file into a container costs the engine a helper process per
copy (a measurable share of ten copies started at once), and a verifier is not the
password. It lets no one log in: SCRAM clients prove knowledge of the password itself
(RFC 5802, section 9), and whoever can read a container's configuration already controls
the engine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_sha256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``.

    The password is used as UTF-8 without SASLprep, which leaves ASCII unchanged (the
    service's passwords are URL-safe tokens)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${ITERATIONS}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
