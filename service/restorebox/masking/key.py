"""The masking key: what makes masked values deterministic yet not reversible.

Every masked value is derived from HMAC-SHA256(key, original). With one key per service
(``RESTOREBOX_MASKING_KEY``, or a random one kept in the state directory, readable by
the service alone) a value masks the same way in every table and in every backup of a
series, so joins still join; without the key nobody can recompute it, nor test guesses
against it. The key never enters a sandbox's files: it travels as a query parameter of
each masking statement, as HMAC's two padded halves."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "masking.key"
BLOCK = 64  # SHA-256's block size, what HMAC pads its key to


@dataclass(frozen=True)
class MaskingKey:
    inner: bytes  # key XOR ipad
    outer: bytes  # key XOR opad
    fingerprint: str  # names the key (snapshot cache keys) without revealing it

    @classmethod
    def of(cls, secret: bytes) -> MaskingKey:
        key = hashlib.sha256(secret).digest() if len(secret) > BLOCK else secret
        key = key.ljust(BLOCK, b"\0")
        return cls(
            inner=bytes(b ^ 0x36 for b in key),
            outer=bytes(b ^ 0x5C for b in key),
            fingerprint=hashlib.sha256(b"restorebox-masking-key:" + secret).hexdigest()[:16],
        )


def load_key(configured: str, state_dir: Path) -> MaskingKey:
    """The configured key, else the state directory's (made on first use, mode 0600)."""
    if configured:
        return MaskingKey.of(configured.encode())
    path = state_dir / KEY_FILE
    try:
        return MaskingKey.of(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:  # exclusive: two services starting at once agree on the first key written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return MaskingKey.of(path.read_bytes().strip())
    with os.fdopen(fd, "wb") as file:
        file.write(secret + b"\n")
    return MaskingKey.of(secret)
