"""Decide how a list of backups is restored: which PostgreSQL major, which steps, which
roles, and what must be translated for an older client.

The version rule:

* the **server** must be at least as new as the dump's source server (a newer server
  reads an older server's SQL; the reverse is not promised);
* the **client tools** (psql / pg_restore) should be at least as new as the pg_dump that
  wrote the file. The oldest configured major that satisfies both is chosen (closest to
  production). When no image has tools that new, the newest image whose server
  qualifies is used, and what its client cannot run is translated or dropped, each
  change reported;
* an **archive** (custom, directory, tar) must be readable by the image's pg_restore:
  that is the one hard limit on an explicit request;
* an explicit ``postgres`` is honoured, with a warning when it is older than the dump's
  server, and refused only when its pg_restore cannot read the archive."""

from __future__ import annotations

from dataclasses import dataclass

from restorebox.backups.model import Backup, major_of
from restorebox.errors import InvalidRequest, NoSuitablePostgres
from restorebox.platforms import PROFILES, Profile, detect

# Archive format version -> the oldest pg_restore that reads it (pg_backup_archiver.h:
# 1.14 came with 12, 1.15 with 16, 1.16 with 17).
ARCHIVE_READERS = {(1, 14): 12, (1, 15): 16, (1, 16): 17}


@dataclass(frozen=True)
class RestorePlan:
    major: int
    backups: tuple[Backup, ...]
    roles: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    profile: Profile | None = None  # the managed platform the dumps come from
    evidence: tuple[str, ...] = ()  # why that profile

    @property
    def databases(self) -> list[str]:
        """Databases the dumps create and connect to, in order (none for most dumps)."""
        seen: list[str] = []
        for backup in self.backups:
            seen += [d for d in backup.databases if d not in seen]
        return seen

    @property
    def main_database(self) -> str | None:
        return next((b.main_database for b in self.backups if b.main_database), None)

    @property
    def total_bytes(self) -> int:
        return sum(b.size_bytes for b in self.backups)


def _require_configured(major: int, configured: list[int]) -> None:
    if major not in configured:
        raise InvalidRequest(
            f"PostgreSQL {major} is not configured; available: " + ", ".join(map(str, configured)),
            postgres=major,
        )


def archive_reader(backup: Backup) -> int:
    """The oldest pg_restore major that reads this backup (0 for plain SQL)."""
    if backup.format == "plain" or not backup.archive_version:
        return 0
    major, minor = (int(x) for x in backup.archive_version.split(".")[:2])
    return max((m for (a, b), m in ARCHIVE_READERS.items() if (a, b) <= (major, minor)), default=0)


def _max_major(backups: list[Backup], version: str) -> tuple[int, Backup | None]:
    best: tuple[int, Backup | None] = (0, None)
    for backup in backups:
        major = major_of(getattr(backup, version)) or 0
        if major > best[0]:
            best = (major, backup)
    return best


def choose_major(
    backups: list[Backup], configured: list[int], requested: int | None, default: int
) -> tuple[int, list[str]]:
    """The major to restore into, and warnings about the choice."""
    server, server_culprit = _max_major(backups, "source_server_version")
    tools, tools_culprit = _max_major(backups, "pg_dump_version")
    reader_culprit = max(backups, key=archive_reader, default=None)
    reader = archive_reader(reader_culprit) if reader_culprit else 0
    warnings: list[str] = []
    if requested is not None:
        _require_configured(requested, configured)
        if requested < reader and reader_culprit is not None:
            raise NoSuitablePostgres(
                f"backup {reader_culprit.name!r} is a pg_dump {reader_culprit.pg_dump_version} "
                f"archive (format {reader_culprit.archive_version}) that pg_restore "
                f"{requested} cannot read; it needs PostgreSQL {reader} or newer",
                needed=reader,
            )
        if requested < server and server_culprit is not None:
            warnings.append(
                f"PostgreSQL {requested} was asked for, older than the server "
                f"{server_culprit.name} was dumped from ({server_culprit.source_server_version}):"
                " objects or syntax newer than that may fail"
            )
        if requested < tools and tools_culprit is not None:
            warnings.append(_older_tools(requested, tools_culprit))
        return requested, warnings
    # What the file uses, whatever its header says (uuidv7() in a file that claims 15).
    uses, uses_culprit = max(((b.needs_major or 0, b) for b in backups), key=lambda t: t[0])
    hard = max(server, reader, uses)
    wanted = max(hard, tools)
    if wanted == 0:
        return default, warnings
    if uses > max(server, reader, tools):
        warnings.append(
            f"{uses_culprit.name} uses what PostgreSQL {uses} brought "
            f"({', '.join(uses_culprit.needs)}), whatever its header says: restored into "
            f"{uses} or newer"
        )
    for major in sorted(configured):
        if major >= wanted:
            return major, warnings
    usable = [m for m in configured if m >= hard]
    if usable and tools_culprit is not None:
        major = max(usable)
        return major, [_older_tools(major, tools_culprit)]
    culprit = server_culprit if server >= reader else reader_culprit
    if uses >= max(server, reader):
        culprit = uses_culprit
    assert culprit is not None
    raise NoSuitablePostgres(
        f"backup {culprit.name!r} needs PostgreSQL {hard} or newer (server "
        f"{culprit.source_server_version}, pg_dump {culprit.pg_dump_version}); the newest "
        f"configured image is {max(configured)}",
        needed=hard,
    )


def _older_tools(major: int, culprit: Backup) -> str:
    return (
        f"{culprit.name} was written by pg_dump {culprit.pg_dump_version}; no configured "
        f"image has tools that new, so PostgreSQL {major}'s client restores it and what it "
        "cannot run is translated (see the restore warnings)"
    )


def choose_profile(backups: list[Backup], requested: str) -> tuple[Profile | None, list[str]]:
    """``auto``: detected from the dumps; ``none``: no profile; a name: that profile."""
    if requested == "none" or not backups:
        return None, []
    if requested != "auto":
        if requested not in PROFILES:
            raise InvalidRequest(
                f"unknown profile {requested!r}; known: auto, none, " + ", ".join(PROFILES)
            )
        return PROFILES[requested], ["requested"]
    return detect(backups)


def make_plan(
    backups: list[Backup],
    configured: list[int],
    requested: int | None,
    default: int,
    profile: str = "auto",
) -> RestorePlan:
    if not backups:
        major = requested if requested is not None else default
        _require_configured(major, configured)
        return RestorePlan(major, (), ())
    major, warnings = choose_major(backups, configured, requested, default)
    platform, evidence = choose_profile(backups, profile)
    roles = sorted(roles_to_create(backups))
    return RestorePlan(
        major, tuple(backups), tuple(roles), tuple(warnings), platform, tuple(evidence)
    )


def roles_to_create(backups: list[Backup]) -> set[str]:
    """Roles the backups name that restorebox makes first: not those an earlier file of
    the set makes itself (a roles file before the schema), whose CREATE ROLE would
    otherwise find them made."""
    made: set[str] = set()
    needed: set[str] = set()
    for backup in backups:
        needed |= set(backup.roles) - made
        made |= set(backup.creates_roles)
    return needed


def database_for(plan: RestorePlan, requested: str | None) -> str | None:
    """For dumps that create their databases: the one the sandbox hands out (the request's,
    which must be one of them, else the dump's main one). None for other dumps."""
    if not plan.databases:
        return None
    if requested is not None and requested not in plan.databases:
        raise InvalidRequest(
            f"database {requested!r} is not one the backup creates; it creates "
            + ", ".join(plan.databases)
        )
    return requested or plan.main_database
