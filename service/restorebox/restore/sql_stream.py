"""The SQL a restore streams into the sandbox's psql, rewritten on its way by the service.

Two sources: a plain file read from the backups folder (decompressed here), or an
archive's SQL as the sandbox's own ``pg_restore -f -`` writes it, read back from the
container. Either way psql reads exactly what the rewrites (``sql.rewrite``) made of it,
and the service never holds more than a few chunks of it."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from restorebox.backups.model import Compression
from restorebox.backups.sniff import ReadThrough, decompressing
from restorebox.runtime import ExecResult, Runtime, UploadFile

CHUNK = 1 << 20
TOOL_MESSAGE_MARK = b"-- skipped by restorebox: "
Tick = Callable[[int], None]  # told the bytes read; raises to stop the stream


def plain_sql(
    source: UploadFile, compression: Compression, tool_messages: int, tick: Tick
) -> Iterator[bytes]:
    """A plain file's SQL text, decompressed, with pg_dump's own messages at its top (2>&1)
    made comments. ``tick`` sees the bytes read from the file (progress, cancellation)."""
    with source.open() as raw:
        counted = io.BufferedReader(_Counting(raw, tick), CHUNK)
        with decompressing(counted, compression) as text:
            chunks = iter(lambda: text.read(CHUNK), b"")
            yield from _commented_head(chunks, tool_messages)


class _Counting(ReadThrough):
    """Tells ``tick`` how many bytes of the file have been read so far."""

    def __init__(self, raw: IO[bytes], tick: Tick) -> None:
        super().__init__(raw)
        self.tick = tick

    def seen(self, data: bytes) -> None:
        self.tick(self.size)


def _commented_head(chunks: Iterator[bytes], lines: int) -> Iterator[bytes]:
    if lines <= 0:
        yield from chunks
        return
    head = b""
    for chunk in chunks:
        head += chunk
        if head.count(b"\n") >= lines:
            break
    parts = head.split(b"\n", lines)
    yield b"\n".join(TOOL_MESSAGE_MARK + line for line in parts[:lines]) + b"\n"
    if len(parts) > lines:
        yield parts[lines]
    yield from chunks


class ArchiveSql:
    """``pg_restore -f -`` running in the sandbox, its standard output handed on as chunks.

    Iterate it to read the SQL; ``result`` is pg_restore's once it ended. A reader that
    stops early (psql ended at an error) calls ``abandon``: what pg_restore still writes
    is then read and dropped, so it ends instead of blocking on a full pipe."""

    def __init__(
        self,
        runtime: Runtime,
        container_id: str,
        argv: Sequence[str],
        on_stderr: Callable[[bytes], None],
    ) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._abandoned = threading.Event()
        self.result: ExecResult | None = None
        self.failure: BaseException | None = None

        def run() -> None:
            try:
                self.result = runtime.exec(
                    container_id,
                    list(argv),
                    on_stderr=on_stderr,
                    on_stdout=self._put,
                    max_output=0,
                )
            except BaseException as exc:  # raised again by the reader
                self.failure = exc
            finally:
                self._put_end()

        self._thread = threading.Thread(target=run, name="archive-sql", daemon=True)
        self._thread.start()

    def _put(self, chunk: bytes) -> None:
        while not self._abandoned.is_set():
            try:
                self._chunks.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def _put_end(self) -> None:
        while True:
            try:
                self._chunks.put(None, timeout=0.5)
                return
            except queue.Full:
                if self._abandoned.is_set():
                    self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                return

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                break
            yield chunk
        if self.failure is not None:
            raise self.failure

    def abandon(self) -> None:
        self._abandoned.set()
        self._drain()

    def wait(self, timeout: float) -> ExecResult | None:
        self._thread.join(timeout)
        return self.result
