"""Read the header and table of contents of a pg_dump archive (custom, tar, directory).

The layout follows pg_backup_archiver.c (ReadHead / ReadToc): integers are a sign
byte plus ``intSize`` little-endian bytes; strings are an integer length (-1 for
NULL) and the bytes."""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from restorebox.errors import UnsupportedBackup

FORMATS = {1: "custom", 3: "tar", 5: "directory"}
COMPRESSION_ALGORITHMS = {0: "none", 1: "gzip", 2: "lz4", 3: "zstd"}


@dataclass
class TocEntry:
    dump_id: int
    had_dumper: bool
    tag: str
    desc: str
    namespace: str | None
    owner: str | None
    defn: str | None
    copy_stmt: str | None = None


_ENCODING = re.compile(r"client_encoding\s*=\s*'([^']+)'", re.IGNORECASE)


@dataclass
class ArchiveToc:
    version: tuple[int, int, int]
    format: str
    compression: str
    dbname: str | None
    server_version: str | None
    pg_dump_version: str | None
    entries: list[TocEntry] = field(default_factory=list)
    int_size: int = 4

    @property
    def encoding(self) -> str | None:
        """The dump's encoding, from its ENCODING entry (``SET client_encoding = 'X';``)."""
        for entry in self.entries:
            if entry.desc == "ENCODING" and (found := _ENCODING.search(entry.defn or "")):
                return found.group(1).upper()
        return None


class Reader:
    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name
        self.int_size = 4
        self.off_size = 8
        self.seen = bytearray()  # the first bytes read: evidence of what damaged it

    def bytes(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(self.seen) < SEEN_BYTES:
            self.seen += data[: SEEN_BYTES - len(self.seen)]
        if len(data) != n:
            raise UnsupportedBackup(f"{self.name}: the archive's table of contents is truncated")
        return data

    def byte(self) -> int:
        return self.bytes(1)[0]

    def int(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.bytes(self.int_size), "little")
        return -value if sign else value

    def str(self) -> str | None:
        length = self.int()
        if length < 0:
            return None
        if length > 256 * 1024 * 1024:
            raise UnsupportedBackup(f"{self.name}: implausible string length in the archive")
        return self.bytes(length).decode("utf-8", "replace")

    def offset(self) -> None:
        self.bytes(1 + self.off_size)


SEEN_BYTES = 64 * 1024
CRLF_FIX = (
    "its newlines were turned into CRLF (git's autocrlf, an FTP text transfer, an editor): "
    "the binary archive is damaged; copy it again as binary (git: `*.dump binary` in "
    ".gitattributes)"
)


def crlf_damaged(data: bytes) -> bool:
    """Whether binary data looks converted to CRLF line endings: nearly every newline
    byte follows a carriage return, which a pg_dump archive's binary never does."""
    newlines = data.count(b"\n")
    return newlines >= 8 and data.count(b"\r\n") >= 0.95 * newlines


def read_toc(stream: IO[bytes], name: str) -> ArchiveToc:
    reader = Reader(stream, name)
    try:
        return _read_toc(reader, name)
    except UnsupportedBackup as exc:
        # More than the TOC's reader got to: it is failing anyway.
        if stream.seekable():
            stream.seek(0)
            sample = stream.read(SEEN_BYTES)
        else:
            sample = bytes(reader.seen) + stream.read(max(0, SEEN_BYTES - len(reader.seen)))
        if crlf_damaged(sample):
            raise UnsupportedBackup(f"{name}: {CRLF_FIX} ({exc.message})") from exc
        raise


def _read_toc(r: Reader, name: str) -> ArchiveToc:
    if r.bytes(5) != b"PGDMP":
        raise UnsupportedBackup(f"{name}: not a pg_dump archive (no PGDMP header)")
    vmaj, vmin = r.byte(), r.byte()
    vrev = r.byte() if (vmaj > 1 or vmin > 2) else 0
    version = (vmaj, vmin, vrev)
    if version < (1, 10, 0):
        raise UnsupportedBackup(f"{name}: archive version {vmaj}.{vmin} is too old (before 9.0)")
    if version > (1, 16, 0):
        raise UnsupportedBackup(
            f"{name}: archive version {vmaj}.{vmin}.{vrev} is newer than restorebox understands"
        )
    r.int_size, r.off_size = r.byte(), r.byte()
    if r.int_size not in (4, 8) or r.off_size not in (4, 8):
        raise UnsupportedBackup(f"{name}: corrupt archive header")
    fmt = FORMATS.get(r.byte(), "unknown")
    if version >= (1, 15, 0):
        compression = COMPRESSION_ALGORITHMS.get(r.byte(), "unknown")
    else:
        compression = "gzip" if r.int() != 0 else "none"
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        r.int()
    dbname = r.str()
    server_version, dump_version = r.str(), r.str()
    toc = ArchiveToc(version, fmt, compression, dbname, server_version, dump_version)
    toc.int_size = r.int_size
    count = r.int()
    if count < 0 or count > 10_000_000:
        raise UnsupportedBackup(f"{name}: corrupt table of contents ({count} entries)")
    for _ in range(count):
        dump_id = r.int()
        had_dumper = bool(r.int())
        r.str()  # table oid
        r.str()  # oid
        tag, desc = r.str() or "", r.str() or ""
        r.int()  # section
        defn = r.str()
        r.str()  # drop statement
        copy_stmt = r.str()
        namespace = r.str()
        r.str()  # tablespace
        if version >= (1, 14, 0):
            r.str()  # table access method
        if version >= (1, 16, 0):
            r.int()  # relkind
        owner = r.str()
        r.str()  # "false": WITH OIDS
        while r.str() is not None:  # dependencies
            pass
        if fmt == "custom":
            r.offset()  # data state flag + data position
        else:
            r.str()  # file name
        toc.entries.append(
            TocEntry(dump_id, had_dumper, tag, desc, namespace, owner, defn, copy_stmt)
        )
    return toc


def read_archive_toc(path: Path, fmt: str) -> ArchiveToc:
    """The TOC of a custom file, a tar file, or a directory backup."""
    if fmt == "directory":
        with (path / "toc.dat").open("rb") as handle:
            return read_toc(handle, path.name)
    if fmt == "tar":
        try:
            with tarfile.open(path, mode="r:") as tar:
                member = tar.extractfile("toc.dat")
                if member is None:
                    raise UnsupportedBackup(f"{path.name}: tar file without toc.dat")
                return read_toc(member, path.name)
        except (tarfile.TarError, KeyError) as exc:
            raise UnsupportedBackup(f"{path.name}: not a pg_dump tar archive: {exc}") from exc
    with path.open("rb") as handle:
        return read_toc(handle, path.name)
