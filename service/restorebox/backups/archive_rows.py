"""Count the rows a pg_dump archive carries, in the pass that hashes it.

A custom archive is its table of contents followed by data blocks (pg_backup_custom.c):
a block type byte, the entry's dump id, then chunks (an integer length and that many
bytes) ending with a zero length. A COPY entry's data is its rows, one per line (a
newline inside a value is written as ``\\n``), compressed as one stream per entry. A
directory archive keeps each entry's data in ``<dump id>.dat`` (``.gz`` when compressed).

COPY data is counted here whatever the compression (gzip, lz4, zstd, none); anything
else (INSERT-style data, a block that cannot be read) returns None and the sandbox's own
pg_restore counts it after the restore."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import IO, Any

import lz4.frame
import zstandard

from restorebox.backups.archive import ArchiveToc, Reader
from restorebox.errors import UnsupportedBackup

BLK_DATA = 1
BLK_BLOBS = 3
MAX_CHUNK = 64 * 1024 * 1024  # larger means a corrupt archive: leave counting to pg_restore
READ_SIZE = 1024 * 1024
DATA_FILE = re.compile(r"^(\d+)\.dat(?:\.(gz|zst|lz4))?$")
COUNTED = ("none", "gzip", "zstd", "lz4")
SUFFIXES = {"gz": "gzip", "zst": "zstd", "lz4": "lz4"}
TERMINATOR = re.compile(rb"(?<![^\n])\\\.\n+$")  # a line "\." then blank lines, at the end
_ERRORS = (zlib.error, zstandard.ZstdError, RuntimeError, ValueError)  # lz4: RuntimeError


def copy_tables(toc: ArchiveToc) -> dict[int, str]:
    """dump id -> "schema.table" for the entries whose data is COPY rows."""
    return {
        e.dump_id: f"{e.namespace or 'public'}.{e.tag}"
        for e in toc.entries
        if e.desc == "TABLE DATA" and (e.copy_stmt or "").startswith("COPY ")
    }


class _LineCounter:
    """Newlines in a stream of chunks, decompressed as they come."""

    def __init__(self, compression: str, wbits: int = zlib.MAX_WBITS) -> None:
        self.inflate: Any = None
        if compression == "gzip":
            self.inflate = zlib.decompressobj(wbits)
        elif compression == "zstd":
            self.inflate = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        elif compression == "lz4":
            self.inflate = lz4.frame.LZ4FrameDecompressor()
        self.lines = 0
        self.tail = b""

    def feed(self, data: bytes) -> None:
        if self.inflate is not None:
            data = self.inflate.decompress(data)
        self.lines += data.count(b"\n")
        self.tail = (self.tail + data)[-16:]

    @property
    def rows(self) -> int:
        """Lines, less the end-of-data marker pg_dump may store after the rows
        (``\\.`` and blank lines; no row is ``\\.``, COPY escapes it)."""
        marker = TERMINATOR.search(self.tail)
        return self.lines - (marker.group(0).count(b"\n") if marker else 0)


def count_custom_rows(stream: IO[bytes], toc: ArchiveToc, name: str) -> dict[str, int] | None:
    """Rows per table of a custom archive whose ``stream`` is positioned just after the
    table of contents (where ``read_toc`` left it)."""
    if toc.compression not in COUNTED:
        return None
    tables = copy_tables(toc)
    reader = Reader(stream, name)
    reader.int_size = toc.int_size
    counts: dict[str, int] = {}
    seen: set[int] = set()
    try:
        # Blocks until the end, or until bytes that are no block (a file written with
        # O_APPEND carries its table of contents again after the data).
        while (kind := stream.read(1)) and kind[0] in (BLK_DATA, BLK_BLOBS):
            dump_id = reader.int()
            if kind[0] == BLK_DATA:
                counter = _LineCounter(toc.compression)
                if not _read_chunks(reader, counter):
                    return None
                if dump_id in tables:
                    seen.add(dump_id)
                    table = tables[dump_id]
                    counts[table] = counts.get(table, 0) + counter.rows
            else:
                while reader.int() != 0:  # one large object: its oid, then its chunks
                    if not _read_chunks(reader, None):
                        return None
    except (*_ERRORS, UnsupportedBackup):
        return None
    # Every table's rows were read, or the count is not trusted.
    return counts if seen == set(tables) else None


def _read_chunks(reader: Reader, counter: _LineCounter | None) -> bool:
    while (length := reader.int()) != 0:
        if length < 0 or length > MAX_CHUNK:
            return False
        data = reader.bytes(length)
        if counter is not None:
            counter.feed(data)
    return True


def data_file_table(path: Path, tables: dict[int, str]) -> str | None:
    """The table whose COPY rows a directory archive's file holds, if it is one."""
    match = DATA_FILE.match(path.name)
    return tables.get(int(match.group(1))) if match else None


def count_directory_file(path: Path, handle: IO[bytes]) -> int | None:
    """Rows in a data file of a directory archive, read from ``handle`` (which the caller
    may hash as it goes); None when it cannot be read."""
    match = DATA_FILE.match(path.name)
    compression = SUFFIXES.get(match.group(2) if match else "", "none")
    # wbits 31: a gzip member with its header, as pg_dump writes .dat.gz files.
    counter = _LineCounter(compression, wbits=31)
    try:
        while chunk := handle.read(READ_SIZE):
            counter.feed(chunk)
    except _ERRORS:
        return None
    return counter.rows
