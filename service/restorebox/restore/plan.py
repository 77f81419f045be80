"""Decide how a list of backups is restored: which PostgreSQL major, which steps, which roles."""

from __future__ import annotations

from dataclasses import dataclass

from ..backups.model import Backup
from ..errors import InvalidRequest, NoSuitablePostgres


@dataclass(frozen=True)
class RestorePlan:
    major: int
    backups: tuple[Backup, ...]
    roles: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(b.size_bytes for b in self.backups)


def _require_configured(major: int, configured: list[int]) -> None:
    if major not in configured:
        raise InvalidRequest(
            f"PostgreSQL {major} is not configured; available: " + ", ".join(map(str, configured)),
            postgres=major,
        )


def choose_major(
    backups: list[Backup], configured: list[int], requested: int | None, default: int
) -> int:
    """The oldest configured major at least as new as every backup's server and pg_dump.

    Restoring into the oldest sufficient major keeps the sandbox closest to production;
    an explicit request is honoured when it is new enough; backups that name no version
    (hand-written SQL) get the default major, the newest unless configured otherwise."""
    needed = max((b.required_major or 0 for b in backups), default=0)
    if requested is not None:
        _require_configured(requested, configured)
        if requested < needed:
            culprit = max(backups, key=lambda b: b.required_major or 0)
            raise NoSuitablePostgres(
                f"backup {culprit.name!r} was written by pg_dump {culprit.pg_dump_version} from "
                f"server {culprit.source_server_version}; it needs PostgreSQL {needed} or newer, "
                f"not {requested}",
                needed=needed,
            )
        return requested
    if needed == 0:
        return default
    for major in sorted(configured):
        if major >= needed:
            return major
    culprit = max(backups, key=lambda b: b.required_major or 0)
    raise NoSuitablePostgres(
        f"backup {culprit.name!r} needs PostgreSQL {needed} or newer (server "
        f"{culprit.source_server_version}, pg_dump {culprit.pg_dump_version}); the newest "
        f"configured image is {max(configured)}",
        needed=needed,
    )


def make_plan(
    backups: list[Backup], configured: list[int], requested: int | None, default: int
) -> RestorePlan:
    if not backups:
        major = requested if requested is not None else default
        _require_configured(major, configured)
        return RestorePlan(major, (), ())
    major = choose_major(backups, configured, requested, default)
    roles = sorted({role for b in backups for role in b.roles})
    return RestorePlan(major, tuple(backups), tuple(roles))
