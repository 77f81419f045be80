"""Which backups belong together: a series is a backup name without its trailing
timestamp, so ``factory_pulse_complete_backup_20250902_214058.sql`` belongs to series
``factory_pulse_complete_backup``. A data-only backup is drilled with the schema-only
backup of the same timestamp when there is one (a set, schema first)."""

from __future__ import annotations

import fnmatch
import itertools
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# What a backup's name ends with after its timestamp: dump suffixes, compression.
_SUFFIX = re.compile(
    r"(\.(sql|dump|backup|bak|tar|tgz|zip|pgdump|custom|dir|gz|zst|lz4|pgsql|psql))+$",
    re.IGNORECASE,
)
# Trailing timestamps people and tools write, most specific first.
_STAMPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{8})[_T-]?(\d{6})Z?$"), "%Y%m%d%H%M%S"),  # 20250902_214058
    (
        re.compile(r"(\d{4}-\d{2}-\d{2})[T_ ](\d{2})[-:.]?(\d{2})[-:.]?(\d{2})Z?$"),
        "%Y-%m-%d%H%M%S",
    ),  # 2025-09-02T21-40-58
    (re.compile(r"(\d{4}-\d{2}-\d{2})$"), "%Y-%m-%d"),  # 2025-09-02
    (re.compile(r"(\d{8})$"), "%Y%m%d"),  # 20250902
    (re.compile(r"(1\d{9})$"), "epoch"),  # epoch seconds (2001-2033)
)


@dataclass(frozen=True)
class Named:
    """A backup's name read as series + timestamp."""

    backup: str
    series: str
    stamp: datetime | None  # None: no timestamp in the name


def read_name(backup: str) -> Named:
    """Series and timestamp of a backup's name; a backup in a subfolder belongs to a
    series of that folder (``nightly/app_2025-09-02.sql`` -> ``nightly/app``)."""
    folder, _, base = backup.rpartition("/")
    prefix = f"{folder}/" if folder else ""
    stem = _SUFFIX.sub("", base)
    for pattern, fmt in _STAMPS:
        match = pattern.search(stem)
        if match is None:
            continue
        text = "".join(match.groups())
        try:
            if fmt == "epoch":
                stamp = datetime.fromtimestamp(int(text), UTC)
            else:
                stamp = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        series = stem[: match.start()].rstrip("_-. ") or stem
        return Named(backup, prefix + series, stamp)
    return Named(backup, prefix + stem, None)


@dataclass
class Series:
    name: str
    # Oldest first: (backup, when it was made: the name's timestamp, else the file's mtime).
    backups: list[tuple[str, datetime]] = field(default_factory=list)
    every_seconds: float | None = None  # declared; else learned from the gaps

    @property
    def newest(self) -> tuple[str, datetime] | None:
        return self.backups[-1] if self.backups else None

    def expected_interval(self) -> float | None:
        """Declared, else the median gap between successive backups (two gaps at least)."""
        if self.every_seconds is not None:
            return self.every_seconds
        times = [when for _, when in self.backups]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        gaps = [g for g in gaps if g > 0]
        return statistics.median(gaps) if len(gaps) >= 2 else None

    def stale(self, now: datetime) -> bool:
        """No backup within the expected interval: half an interval of grace when it
        was learned (backups drift), none when it was declared."""
        interval = self.expected_interval()
        newest = self.newest
        if interval is None or newest is None:
            return False
        grace = 0.0 if self.every_seconds is not None else interval / 2
        return (now - newest[1]).total_seconds() > interval + grace


def group(
    backups: dict[str, datetime],
    declared: Callable[[str], tuple[str, float | None] | None] = lambda name: None,
) -> dict[str, Series]:
    """Series of ``backups`` (name -> file mtime), each oldest first. ``declared`` gives
    the drills file's series (and interval) of a backup it names, else None."""
    series: dict[str, Series] = {}
    for name, mtime in backups.items():
        named = read_name(name)
        when = named.stamp or mtime
        owner, every = declared(name) or (named.series, None)
        one = series.setdefault(owner, Series(owner, every_seconds=every))
        one.backups.append((name, when))
    for one in series.values():
        one.backups.sort(key=lambda item: (item[1], item[0]))
    return dict(sorted(series.items()))


def ordered_set(backup: str, patterns: list[str], names: list[str]) -> list[str]:
    """A declared set: for each glob in order, the backup of ``backup``'s timestamp that
    matches it (the drills file's ``set``)."""
    stamp = read_name(backup).stamp
    chosen = []
    for pattern in patterns:
        for name in sorted(names):
            if fnmatch.fnmatchcase(name, pattern) and read_name(name).stamp == stamp:
                chosen.append(name)
                break
    return chosen if backup in chosen else [*chosen, backup]


def drill_set(backup: str, content: dict[str, str]) -> list[str]:
    """What a drill of ``backup`` restores: a data-only backup comes after the
    schema-only backup of the same timestamp when there is one. ``content`` maps each
    backup's name to its content (schema, data, complete, ...)."""
    if content.get(backup) != "data":
        return [backup]
    named = read_name(backup)
    if named.stamp is None:
        return [backup]
    for other, kind in sorted(content.items()):
        if kind != "schema" or other == backup:
            continue
        theirs = read_name(other)
        if theirs.stamp == named.stamp:
            return [other, backup]
    return [backup]
