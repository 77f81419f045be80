"""Dumps wrapped in an archive people made themselves: a tar, tar.gz or zip holding a
directory-format dump (what tarring up a ``pg_dump -Fd`` folder gives) or one dump file.

Members are read where they are, never extracted to disk: the restore streams them into
the sandbox. The same path-safety rules as for the backups folder hold inside: no
absolute or ``..`` names, no links, devices or FIFOs; macOS's AppleDouble files
(``._*``, ``__MACOSX/``) are ignored."""

from __future__ import annotations

import functools
import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal, cast

from restorebox.backups.archive import FORMATS
from restorebox.errors import UnsupportedBackup

Wrapper = Literal["tar", "tar.gz", "zip"]
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Entry:
    """One file of the wrapped dump: its name inside the dump, its size, how to read it."""

    name: str
    size: int
    open: Callable[[], IO[bytes]]


@dataclass(frozen=True)
class Wrapped:
    wrapper: Wrapper
    directory: bool  # a directory-format dump (else a single dump file)
    entries: tuple[Entry, ...]

    @property
    def single(self) -> Entry:
        return self.entries[0]


def wrapper_of(path: Path, head: bytes) -> Wrapper | None:
    """Which wrapper ``path`` is, from its first bytes (tar: ustar magic at 257)."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as stream:
                inner = stream.read(512)
        except (OSError, EOFError):
            return None  # corrupt gzip: the sniffer says so precisely
        if len(inner) >= 262 and inner[257:262] == b"ustar":
            return "tar.gz"
    return None


def _junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or PurePosixPath(name).name.startswith("._")


def _safe(label: str, name: str) -> str:
    pure = PurePosixPath(name)
    parts = [p for p in pure.parts if p != "."]
    if pure.is_absolute() or ".." in parts or not parts:
        raise UnsupportedBackup(f"{label}: member {name!r} would leave the archive's folder")
    return "/".join(parts)


def _members(path: Path, wrapper: Wrapper) -> list[tuple[str, int, Callable[[], IO[bytes]]]]:
    label = path.name
    found: list[tuple[str, int, Callable[[], IO[bytes]]]] = []
    if wrapper == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or _junk(info.filename):
                    continue
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode != 0o100000:  # a symlink or special file stored by Unix zip
                    raise UnsupportedBackup(f"{label}: member {info.filename!r} is not a file")
                name = _safe(label, info.filename)

                found.append(
                    (name, info.file_size, functools.partial(_open_zip, path, info.filename))
                )
        return found
    with tarfile.open(path, mode="r:gz" if wrapper == "tar.gz" else "r:") as archive:
        for member in archive.getmembers():
            if member.isdir() or _junk(member.name):
                continue
            if not member.isreg():
                raise UnsupportedBackup(
                    f"{label}: member {member.name!r} is a link or special file; only "
                    "regular files are restored"
                )
            name = _safe(label, member.name)

            found.append(
                (name, member.size, functools.partial(_open_tar, path, wrapper, member.name))
            )
    return found


def open_wrapped(path: Path, wrapper: Wrapper) -> Wrapped | None:
    """The dump inside ``path``, or None when the tar is pg_dump's own tar format."""
    try:
        members = _members(path, wrapper)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsupportedBackup(f"{path.name}: cannot read the {wrapper} archive: {exc}") from exc
    tocs = [m for m in members if PurePosixPath(m[0]).name == "toc.dat"]
    if len(tocs) > 1:
        raise UnsupportedBackup(
            f"{path.name}: holds {len(tocs)} directory-format dumps; wrap one per file"
        )
    if tocs:
        prefix = str(PurePosixPath(tocs[0][0]).parent)
        if prefix == "." and wrapper == "tar" and _toc_format(tocs[0][2]) == "tar":
            return None  # pg_dump -Ft: restored as the tar archive it is
        base = "" if prefix == "." else prefix + "/"
        entries = tuple(
            Entry(m[0][len(base) :], m[1], m[2]) for m in members if m[0].startswith(base)
        )
        return Wrapped(wrapper, True, entries)
    if len(members) == 1:
        name, size, opener = members[0]
        return Wrapped(wrapper, False, (Entry(PurePosixPath(name).name, size, opener),))
    raise UnsupportedBackup(
        f"{path.name}: a {wrapper} archive with {len(members)} files and no directory-format "
        "dump (toc.dat); wrap one dump per archive"
    )


def _toc_format(opener: Callable[[], IO[bytes]]) -> str:
    with opener() as stream:
        head = stream.read(16)
    if not head.startswith(b"PGDMP") or len(head) < 11:
        return "unknown"
    # PGDMP, version major/minor/rev, int size, offset size, format.
    offset = 10 if head[5] > 1 or head[6] > 2 else 9
    return FORMATS.get(head[offset], "unknown")


def _open_tar(path: Path, wrapper: Wrapper, name: str) -> IO[bytes]:
    return _buffered(_TarMember(path, wrapper, name))


def _open_zip(path: Path, name: str) -> IO[bytes]:
    return _buffered(_ZipMember(path, name))


def _buffered(raw: io.RawIOBase) -> IO[bytes]:
    return cast(IO[bytes], io.BufferedReader(raw, buffer_size=1024 * 1024))


class _Member(io.RawIOBase):
    """A member of an archive, read through its own handle on the archive."""

    _stream: IO[bytes]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _TarMember(_Member):
    def __init__(self, path: Path, wrapper: Wrapper, name: str) -> None:
        self._tar = tarfile.open(path, mode="r:gz" if wrapper == "tar.gz" else "r:")  # noqa: SIM115 -- closed in close()
        stream = self._tar.extractfile(name)
        if stream is None:
            raise UnsupportedBackup(f"{path.name}: member {name!r} is not a file")
        self._stream = stream

    def close(self) -> None:
        self._tar.close()
        super().close()


class _ZipMember(_Member):
    def __init__(self, path: Path, name: str) -> None:
        self._zip = zipfile.ZipFile(path)
        self._stream = self._zip.open(name)

    def close(self) -> None:
        self._stream.close()
        self._zip.close()
        super().close()
