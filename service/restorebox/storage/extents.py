"""What files hold on disk, read from the filesystem's extent map (``FS_IOC_FIEMAP``):
which blocks a file shares with others (clones of it, or what it was cloned from) and which
are its own. That tells what a snapshot or a copy really costs, and what several snapshots
cost together (shared blocks counted once)."""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

FS_IOC_FIEMAP = 0xC020660B
_HEADER = struct.Struct("=QQLLLL")  # fm_start, fm_length, fm_flags, mapped, count, reserved
_EXTENT = struct.Struct("=QQQQQLLLL")  # logical, physical, length, 2 reserved, flags, 3 reserved
_BATCH = 256
_LAST = 0x1
_UNKNOWN = 0x2  # the data's location is not known yet (delayed allocation)
_SHARED = 0x2000


@dataclass(frozen=True)
class Extent:
    physical: int
    length: int
    shared: bool
    known: bool  # False: not on disk yet (delayed allocation), so the file's own


@dataclass(frozen=True)
class TreeUsage:
    """A directory tree's bytes: ``logical`` its files' sizes, ``exclusive`` what only it
    holds on disk (freed if it were removed)."""

    logical: int
    exclusive: int


def extents(fd: int) -> Iterator[Extent]:
    start = 0
    while True:
        buffer = bytearray(_HEADER.size + _EXTENT.size * _BATCH)
        _HEADER.pack_into(buffer, 0, start, 0xFFFFFFFFFFFFFFFF, 0, 0, _BATCH, 0)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buffer)
        mapped = _HEADER.unpack_from(buffer, 0)[3]
        if mapped == 0:
            return
        for index in range(mapped):
            logical, physical, length, _, _, flags, *_ = _EXTENT.unpack_from(
                buffer, _HEADER.size + index * _EXTENT.size
            )
            yield Extent(physical, length, bool(flags & _SHARED), not flags & _UNKNOWN)
            if flags & _LAST:
                return
            start = logical + length


def _files(root: Path) -> Iterator[Path]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path


def _file_extents(path: Path) -> Iterator[Extent]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # removed meanwhile (a live server's temporary files)
        return
    try:
        yield from extents(fd)
    except OSError:
        return
    finally:
        os.close(fd)


def tree_usage(root: Path) -> TreeUsage:
    logical = exclusive = 0
    for path in _files(root):
        try:
            logical += path.stat().st_size
        except OSError:
            continue
        exclusive += sum(e.length for e in _file_extents(path) if not e.shared)
    return TreeUsage(logical, exclusive)


def footprint(roots: Iterable[Path]) -> int:
    """Bytes the trees hold on disk together: each block counted once, however many of
    them share it."""
    ranges = sorted(
        (e.physical, e.physical + e.length)
        for root in roots
        for path in _files(root)
        for e in _file_extents(path)
        if e.known
    )
    total, end = 0, -1
    for first, last in ranges:
        if first >= end:
            total += last - first
            end = last
        elif last > end:
            total += last - end
            end = last
    return total
