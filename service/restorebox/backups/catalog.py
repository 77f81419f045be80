"""The backups folder: safe name resolution and a cached, content-based description."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path, PurePosixPath
from typing import IO, cast

import zstandard

from ..errors import BackupNotFound, BackupTooLarge, InvalidBackupName, UnsupportedBackup
from .archive import read_archive_toc
from .declared import archive_declarations
from .model import Backup, Content
from .plain import scan_plain
from .sniff import HashingReader, decompressing, sniff

_Stamp = tuple[tuple[str, int, int], ...]


class Catalog:
    """Backups under ``root``. Names are relative POSIX paths that never leave it."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._cache: dict[str, tuple[_Stamp, Backup]] = {}
        self._lock = threading.Lock()

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
            raise BackupNotFound(f"no backup named {name!r}", name=name)
        return real

    def names(self) -> list[str]:
        """Every candidate backup: files, and folders holding a toc.dat."""
        root = self.root.resolve()
        if not root.is_dir():
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if (here / "toc.dat").is_file() and here != root:
                found.append(here.relative_to(root).as_posix())
                dirnames.clear()
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                found.append((here / filename).relative_to(root).as_posix())
        return sorted(found)

    # -- descriptions -----------------------------------------------------------
    def get(self, name: str) -> Backup:
        path = self.resolve(name)
        stamp = _stamp(path)
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
        backup = describe(name, path)
        if self.max_bytes is not None and backup.size_bytes > self.max_bytes:
            raise BackupTooLarge(
                f"backup {name!r} is {backup.size_bytes} bytes, over the limit of "
                f"{self.max_bytes} bytes",
                name=name,
            )
        with self._lock:
            self._cache[name] = (stamp, backup)
        return backup

    def list(self) -> list[Backup | UnsupportedBackup]:
        items: list[Backup | UnsupportedBackup] = []
        for name in self.names():
            try:
                items.append(self.get(name))
            except (UnsupportedBackup, BackupTooLarge, InvalidBackupName) as exc:
                exc.details.setdefault("name", name)
                items.append(UnsupportedBackup(exc.message, name=name))
        return items


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def _stamp(path: Path) -> _Stamp:
    stamps = []
    for file in _files_of(path):
        st = file.stat()
        stamps.append((str(file), st.st_size, st.st_mtime_ns))
    return tuple(stamps)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for file in _files_of(path):
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _content(has_schema: bool, has_data: bool) -> Content:
    if has_schema and has_data:
        return "complete"
    if has_schema:
        return "schema"
    if has_data:
        return "data"
    return "unknown"


def describe(name: str, path: Path) -> Backup:
    """Read a backup and say what it is. Raises UnsupportedBackup for anything else."""
    fmt, compression = sniff(path)
    warnings: list[str] = []
    if fmt == "plain":
        try:
            with path.open("rb") as handle:
                hashing = HashingReader(handle)
                source = io.BufferedReader(hashing) if compression == "none" else hashing
                with decompressing(cast(IO[bytes], source), compression) as stream:
                    scan = scan_plain(stream)
                sha, size = hashing.finish()
        except (OSError, EOFError, RuntimeError, zstandard.ZstdError) as exc:
            raise UnsupportedBackup(f"{name}: cannot read the dump: {exc}") from exc
        objects = scan.declarations.objects
        has_schema = any(o.kind in ("TABLE", "VIEW", "FUNCTION", "SCHEMA") for o in objects)
        content = _content(has_schema, bool(scan.data_tables))
        for line, text in scan.meta_commands[:20]:
            warnings.append(
                f"line {line}: psql meta-command {text!r} will run inside the sandbox only"
            )
        if scan.cluster_dump:
            warnings.append(
                "pg_dumpall cluster dump: role statements aimed at the sandbox's own user are"
                " skipped"
            )
        backup = Backup(
            name=name,
            format=fmt,
            compression=compression,
            content=content,
            size_bytes=size,
            sha256=sha,
            source_server_version=scan.server_version,
            pg_dump_version=scan.pg_dump_version,
            cluster_dump=scan.cluster_dump,
            warnings=warnings,
            roles=sorted(scan.declarations.roles - scan.declarations.creates_roles),
            objects=objects,
            data_tables=sorted(scan.data_tables),
            row_counts=dict(scan.data_tables),
            path=path,
        )
    else:
        sha, size = _sha256(path)
        toc = read_archive_toc(path, fmt)
        objects, roles, data_tables = archive_declarations(toc)
        has_schema = any(o.kind in ("TABLE", "VIEW", "FUNCTION", "SCHEMA") for o in objects)
        archive_compression = (
            toc.compression if toc.compression in ("none", "gzip", "zstd", "lz4") else "none"
        )
        backup = Backup(
            name=name,
            format=fmt,
            compression=archive_compression,
            content=_content(has_schema, bool(data_tables)),
            size_bytes=size,
            sha256=sha,
            source_server_version=toc.server_version,
            pg_dump_version=toc.pg_dump_version,
            warnings=warnings,
            roles=sorted(roles),
            objects=objects,
            data_tables=sorted(data_tables),
            path=path,
        )
    if backup.content == "unknown":
        backup.warnings.append("the backup declares no tables and carries no data")
    return backup
