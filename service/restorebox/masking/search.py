"""Look for values in a sandbox's files: the data directory, WAL included.

The ``masking_leaks`` probe searches the masked database with SQL; this searches what a
superuser of the copy could read besides (old row versions, recycled WAL segments),
which SQL does not show. Values compressed in TOAST are not found here (SQL finds them)."""

from __future__ import annotations

from restorebox.runtime import Runtime

MIN_LENGTH = 6
MIN_DIGITS = 6
DATA_DIRECTORY = '"${PGDATA:-/var/lib/postgresql/data}"'


def files_holding(runtime: Runtime, container_id: str, values: list[str]) -> list[str]:
    """The files (relative to the data directory) holding any of ``values`` that is
    distinctive enough to be found inside other bytes only where it leaked: e-mail
    addresses and values with six digits or more (phones, cards, IBANs, ids). A name
    is also a part of other, legitimate text: names are left to the SQL search."""
    patterns = [v for v in values if distinctive(v)]
    if not patterns:
        return []
    result = runtime.exec(
        container_id,
        ["sh", "-c", f"cd {DATA_DIRECTORY} && grep -rlaF -f - ."],
        stdin=["\n".join(patterns).encode() + b"\n"],
    )
    if result.exit_code not in (0, 1):  # 1: nothing found
        raise OSError(f"searching the data directory failed: {result.stderr.decode()[:300]}")
    return sorted(line.removeprefix("./") for line in result.stdout.decode().splitlines() if line)


def distinctive(value: str) -> bool:
    if len(value) < MIN_LENGTH or "\n" in value:
        return False
    return "@" in value or sum(ch.isdigit() for ch in value) >= MIN_DIGITS
