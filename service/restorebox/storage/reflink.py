"""Cloning files and directory trees by reference (``FICLONE``): the clone shares the
source's blocks until either is written, so cloning a gigabyte costs milliseconds and no
disk. XFS (with ``reflink=1``, mkfs's default since xfsprogs 5.1) and btrfs support it;
ext4 does not."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h

# What a filesystem answers when it cannot clone (ext4: EOPNOTSUPP; some: EINVAL, ENOTTY).
_CANNOT = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTTY, errno.EXDEV, errno.ENOSYS}


def clone_file(source: int, target: int) -> None:
    """Make the open file ``target`` a clone of the open file ``source``."""
    fcntl.ioctl(target, FICLONE, source)


def cannot_clone(directory: Path) -> str | None:
    """None when files in ``directory`` can be cloned; otherwise why not."""
    probe = directory / f".reflink-probe-{secrets.token_hex(4)}"
    try:
        with probe.open("w+b") as source:
            source.write(b"restorebox")
            source.flush()
            with probe.with_suffix(".clone").open("wb") as target:
                clone_file(source.fileno(), target.fileno())
    except OSError as exc:
        if exc.errno in _CANNOT:
            return f"the filesystem of {directory} cannot clone files ({os.strerror(exc.errno)})"
        return f"cannot write in {directory}: {exc.strerror or exc}"
    finally:
        for path in (probe, probe.with_suffix(".clone")):
            path.unlink(missing_ok=True)
    return None


def clone_tree(source: Path, target: Path) -> None:
    """Clone the tree at ``source`` to ``target`` (which must not exist), keeping owners and
    modes: a PostgreSQL data directory cloned this way is the server's as it was. Regular
    files are cloned, directories and symbolic links made anew."""
    _clone_dir(source, target)


def _clone_dir(source: Path, target: Path) -> None:
    info = source.lstat()
    os.mkdir(target, 0o700)
    for entry in os.scandir(source):
        child, made = Path(entry.path), target / entry.name
        entry_stat = entry.stat(follow_symlinks=False)
        if entry.is_dir(follow_symlinks=False):
            _clone_dir(child, made)
        elif entry.is_symlink():
            os.symlink(os.readlink(child), made)
            os.lchown(made, entry_stat.st_uid, entry_stat.st_gid)
        elif stat.S_ISREG(entry_stat.st_mode):
            _clone_regular(child, made, entry_stat)
        # sockets, fifos: nothing a stopped or paused data directory needs
    _own(target, info)


def _clone_regular(source: Path, target: Path, info: os.stat_result) -> None:
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if info.st_size:
                clone_file(src, dst)
            os.fchown(dst, info.st_uid, info.st_gid)
            os.fchmod(dst, stat.S_IMODE(info.st_mode))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _own(path: Path, info: os.stat_result) -> None:
    os.chown(path, info.st_uid, info.st_gid)
    os.chmod(path, stat.S_IMODE(info.st_mode))
