"""The backups folder: safe name resolution, safe members, and descriptions made once,
off the request path, and remembered across restarts."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from restorebox.backups.cache import DescriptionCache
from restorebox.backups.describe import describe
from restorebox.backups.model import Backup
from restorebox.errors import (
    BackupNotFound,
    BackupTooLarge,
    InvalidBackupName,
    RestoreboxError,
    UnsupportedBackup,
)

log = logging.getLogger("restorebox.catalog")

_ERRORS: dict[str, type[RestoreboxError]] = {
    cls.code: cls for cls in (UnsupportedBackup, InvalidBackupName, BackupTooLarge)
}


# Files of the backups folder that are restorebox's own settings, never backups.
NOT_BACKUPS = {"restorebox-drills.yaml"}
# Raised whenever a description gains what older ones lack: they are made again.
DESCRIPTION_VERSION = 8


@dataclass(frozen=True)
class Member:
    """One regular file of a backup: where it is, its name inside the backup, its size."""

    path: Path
    name: str
    size: int
    mtime_ns: int
    inode: int


class Catalog:
    """Backups under ``root``. Names are relative POSIX paths that never leave it."""

    def __init__(
        self,
        root: Path,
        max_bytes: int | None = None,
        cache_file: Path | None = None,
        inspectors: int = 2,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._cache = DescriptionCache(cache_file)
        self._pool = ThreadPoolExecutor(max_workers=inspectors, thread_name_prefix="inspect")
        self._inflight: dict[str, Future[Backup]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._cache.close()

    # -- names ------------------------------------------------------------------
    def resolve(self, name: str) -> Path:
        """The path of backup ``name``; raises InvalidBackupName or BackupNotFound."""
        if not name or "\0" in name or "\\" in name or len(name) > 1024:
            raise InvalidBackupName(f"invalid backup name {name!r}", name=name)
        pure = PurePosixPath(name)
        if pure.is_absolute() or any(part in ("..", ".", "") for part in pure.parts):
            raise InvalidBackupName(
                f"backup name {name!r} must be a path inside the backups folder", name=name
            )
        root = self.root.resolve()
        candidate = root.joinpath(*pure.parts)
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise BackupNotFound(f"no backup named {name!r}", name=name) from None
        except (OSError, RuntimeError) as exc:
            raise InvalidBackupName(f"backup {name!r} cannot be resolved: {exc}") from exc
        if real != root and root not in real.parents:
            raise InvalidBackupName(f"backup {name!r} points outside the backups folder", name=name)
        if not (real.is_file() or real.is_dir()):
            raise UnsupportedBackup(
                f"backup {name!r} is not a regular file or folder (a device, FIFO or socket)",
                name=name,
            )
        return real

    def members(self, name: str, path: Path) -> list[Member]:
        """Every file of a backup, each resolved and checked: it must be a regular file
        inside the backups folder. Symlinks out, devices, FIFOs and sockets are refused."""
        root = self.root.resolve()
        if not path.is_dir():
            st = path.stat()
            return [Member(path, path.name, st.st_size, st.st_mtime_ns, st.st_ino)]
        found: list[Member] = []
        for dirpath, dirnames, filenames in os.walk(path):
            here = Path(dirpath)
            for dirname in list(dirnames):
                if (here / dirname).is_symlink():
                    raise InvalidBackupName(
                        f"backup {name!r}: {dirname!r} is a symlinked folder; copy it in instead",
                        name=name,
                    )
            dirnames.sort()
            for filename in sorted(filenames):
                entry = here / filename
                real = entry.resolve()
                rel = entry.relative_to(path).as_posix()
                if real != root and root not in real.parents:
                    raise InvalidBackupName(
                        f"backup {name!r}: member {rel!r} points outside the backups folder",
                        name=name,
                    )
                try:
                    st = real.stat()
                except OSError as exc:
                    raise UnsupportedBackup(
                        f"backup {name!r}: member {rel!r} cannot be read: {exc}", name=name
                    ) from exc
                if not stat.S_ISREG(st.st_mode):
                    raise UnsupportedBackup(
                        f"backup {name!r}: member {rel!r} is not a regular file "
                        "(a device, FIFO or socket)",
                        name=name,
                    )
                found.append(Member(real, rel, st.st_size, st.st_mtime_ns, st.st_ino))
        return found

    def names(self) -> list[str]:
        """Every candidate backup: files, and folders holding a toc.dat."""
        root = self.root.resolve()
        if not root.is_dir():
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda _: None):
            here = Path(dirpath)
            if here != root and (here / "toc.dat").exists():
                found.append(here.relative_to(root).as_posix())
                dirnames.clear()
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith(".") or (here == root and filename in NOT_BACKUPS):
                    continue
                found.append((here / filename).relative_to(root).as_posix())
        return sorted(found)

    # -- descriptions -----------------------------------------------------------
    def _checked(self, name: str) -> tuple[Path, str]:
        """Resolve, list members, enforce the size limit: all before reading a byte."""
        path = self.resolve(name)
        members = self.members(name, path)
        size = sum(m.size for m in members)
        if self.max_bytes is not None and size > self.max_bytes:
            raise BackupTooLarge(
                f"backup {name!r} is {size} bytes, over the limit of {self.max_bytes} bytes",
                name=name,
            )
        stamp = ";".join(f"{m.name}:{m.size}:{m.mtime_ns}:{m.inode}" for m in members)
        stamp += f";described-by:{DESCRIPTION_VERSION}"
        return path, hashlib.sha256(stamp.encode()).hexdigest()

    def known(self, name: str, wait: float = 0.0) -> Backup | None:
        """The description if it is known (raising its error if the backup is unusable),
        or becomes known within ``wait`` seconds; otherwise None, and the backup goes on
        being inspected in the background. Names and sizes are checked first, unread."""
        path, stamp = self._checked(name)
        cached = self._cache.get(name, stamp)
        if cached is not None:
            return _raise_or_return(name, cached)
        future = self._inspect(name, path, stamp)
        try:
            return future.result(timeout=wait) if wait > 0 else None
        except TimeoutError:
            return None

    def get(self, name: str) -> Backup:
        """The description, reading the backup now if needed (worker threads, tools)."""
        path, stamp = self._checked(name)
        cached = self._cache.get(name, stamp)
        if cached is not None:
            return _raise_or_return(name, cached)
        return self._inspect(name, path, stamp).result()

    def _inspect(self, name: str, path: Path, stamp: str) -> Future[Backup]:
        key = f"{name}\0{stamp}"
        with self._lock:
            future = self._inflight.get(key)
            fresh = future is None
            if future is None:
                future = self._pool.submit(self._describe, name, path, stamp)
                self._inflight[key] = future
        if fresh:
            # Outside the lock: a future already done runs its callback right here.
            future.add_done_callback(lambda _: self._forget(key))
        return future

    def _forget(self, key: str) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _describe(self, name: str, path: Path, stamp: str) -> Backup:
        try:
            backup = describe(name, path)
        except (UnsupportedBackup, InvalidBackupName) as exc:
            self._cache.put(name, stamp, (exc.code, exc.message))
            raise
        self._cache.put(name, stamp, backup)
        log.info("backup described", extra={"backup": name, "format": backup.format})
        return backup

    def list(self) -> tuple[list[Backup], list[RestoreboxError], list[str]]:
        """(described, unusable, being inspected). One bad entry never breaks the list."""
        good: list[Backup] = []
        bad: list[RestoreboxError] = []
        pending: list[str] = []
        for name in self.names():
            try:
                backup = self.known(name)
            except RestoreboxError as exc:
                exc.details.setdefault("name", name)
                bad.append(exc)
                continue
            except OSError as exc:
                bad.append(UnsupportedBackup(f"{name}: cannot be read: {exc}", name=name))
                continue
            if backup is None:
                pending.append(name)
            else:
                good.append(backup)
        return good, bad, pending


def _raise_or_return(name: str, described: Backup | tuple[str, str]) -> Backup:
    if isinstance(described, Backup):
        return described
    code, message = described
    raise _ERRORS.get(code, UnsupportedBackup)(message, name=name)
