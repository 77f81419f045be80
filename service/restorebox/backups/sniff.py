"""Recognise a backup's format and compression from its bytes, never from its name."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path
from typing import IO, Any, cast

import lz4.frame
import zstandard

from restorebox.backups.foreign import not_postgres, reencoded
from restorebox.backups.model import Compression, Format
from restorebox.errors import UnsupportedBackup

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
ARCHIVE_MAGIC = b"PGDMP"
SQL_STARTS = (
    b"--",
    b"SET ",
    b"SELECT ",
    b"CREATE ",
    b"BEGIN",
    b"\\",
    b"DROP ",
    b"INSERT ",
    b"COPY ",
    b"ALTER ",
    b"COMMENT ",
    b"/*",
    b"START ",
)


def compression_of(head: bytes) -> Compression:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(LZ4_MAGIC):
        return "lz4"
    return "none"


def decompressing(raw: IO[bytes], compression: Compression) -> IO[bytes]:
    """A reader of ``raw``'s decompressed bytes; closing it leaves ``raw`` open."""
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw))
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
        return cast(IO[bytes], io.BufferedReader(reader))  # adds readline / iteration
    if compression == "lz4":
        return cast(IO[bytes], lz4.frame.LZ4FrameFile(raw))
    return raw


class ReadThrough(io.RawIOBase):
    """Reads through to ``raw``, showing every chunk to ``seen`` (and counting them)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.size += len(data)
        self.seen(data)
        return len(data)

    def seen(self, data: bytes) -> None:
        return None


class HashingReader(ReadThrough):
    """Reads through to ``raw`` while hashing every byte, so one pass both scans a dump
    and computes its checksum."""

    def __init__(self, raw: IO[bytes], digest: Any = None) -> None:
        super().__init__(raw)
        self.digest = digest if digest is not None else hashlib.sha256()

    def seen(self, data: bytes) -> None:
        self.digest.update(data)

    def finish(self) -> tuple[str, int]:
        """Hash whatever the reader left unread; return (sha256 hex, size)."""
        while chunk := self.raw.read(1024 * 1024):
            self.digest.update(chunk)
            self.size += len(chunk)
        return self.digest.hexdigest(), self.size


# pg_dump's own messages, redirected into the file with its output (`2>&1`): whole lines
# at the top, before the dump itself ("pg_dump: warning: ...", "pg_dump: detail: ...").
TOOL_MESSAGE = (b"pg_dump: ", b"pg_dumpall: ")


def without_tool_messages(head: bytes) -> tuple[bytes, int]:
    """``head`` after the whole lines of pg_dump's own messages at its top, and how many."""
    count = 0
    while head.startswith(TOOL_MESSAGE) and b"\n" in head:
        head = head.split(b"\n", 1)[1]
        count += 1
    return head, count


def looks_like_sql(head: bytes) -> bool:
    """Text that a plain pg_dump (or a hand-written SQL script) could begin with, after any
    of pg_dump's own messages at the top."""
    head, _ = without_tool_messages(head)
    if b"\0" in head:
        return False
    # Never decoded: a dump is in its database's encoding (LATIN1, WIN1252, EUC_JP, ...),
    # and every one of them writes SQL's words in ASCII.
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return stripped.startswith(SQL_STARTS)


def sniff(path: Path) -> tuple[Format, Compression]:
    """The pg_dump format of ``path`` and the compression wrapped around it (plain files)."""
    if path.is_dir():
        if (path / "toc.dat").is_file():
            return "directory", "none"
        raise UnsupportedBackup(f"{path.name}: a folder without toc.dat is not a pg_dump backup")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise UnsupportedBackup(f"{path.name}: the file is empty")
    if head.startswith(ARCHIVE_MAGIC):
        return "custom", "none"
    body, messages = without_tool_messages(head)
    if messages and body.startswith(ARCHIVE_MAGIC):
        raise UnsupportedBackup(
            f"{path.name}: a custom archive with pg_dump's own messages written into its "
            "first bytes (its output and errors redirected together, `> FILE 2>&1`): "
            "pg_restore cannot read it; dump again with `pg_dump -Fc -f FILE`"
        )
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar", "none"
    compression = compression_of(head)
    if compression != "none":
        try:
            with path.open("rb") as raw, decompressing(raw, compression) as stream:
                inner = stream.read(4096)
        except (OSError, EOFError, zstandard.ZstdError, RuntimeError) as exc:
            raise UnsupportedBackup(f"{path.name}: corrupt {compression} data: {exc}") from exc
        if inner.startswith(ARCHIVE_MAGIC):
            raise UnsupportedBackup(
                f"{path.name}: a {compression}-compressed custom archive; pg_restore reads only"
                " uncompressed archive files (use pg_dump -Z instead)"
            )
        _refuse_foreign(path.name, inner)
        if looks_like_sql(inner):
            return "plain", compression
        raise UnsupportedBackup(f"{path.name}: {compression} data that is not a SQL dump")
    _refuse_foreign(path.name, head)
    if looks_like_sql(head):
        return "plain", "none"
    raise UnsupportedBackup(
        f"{path.name}: not a pg_dump backup (neither SQL text nor a PGDMP archive)"
    )


def _refuse_foreign(name: str, head: bytes) -> None:
    """Refuse what is not a PostgreSQL backup, or no longer the bytes pg_dump wrote, saying
    what it is and what to do (``foreign``)."""
    why = reencoded(name, head) or not_postgres(name, head.decode("utf-8", "replace"))
    if why:
        raise UnsupportedBackup(why)
