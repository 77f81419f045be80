"""Commands run inside a container, their output streamed and capped (a command that
prints gigabytes costs the service at most ``max_output`` bytes per stream)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence

import docker.errors
import docker.utils.socket
import urllib3

from restorebox.errors import ContainerVanished, EngineUnavailable
from restorebox.runtime.base import DEFAULT_MAX_OUTPUT, ExecResult, StreamCallback
from restorebox.runtime.docker.engine import TRANSIENT, Engine


def run(
    engine: Engine,
    container_id: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    user: str = "postgres",
    on_stderr: StreamCallback | None = None,
    on_stdout: StreamCallback | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    stdin: Iterable[bytes] | None = None,
) -> ExecResult:
    api = engine.client.api
    out, err = Capped(max_output), Capped(max_output)
    try:
        exec_id = engine.call(
            api.exec_create,
            container_id,
            list(argv),
            environment=env or {},
            user=user,
            stdin=stdin is not None,
        )["Id"]
        # Streamed, never buffered whole: a command printing gigabytes costs the
        # service at most max_output bytes per stream.
        if stdin is None:
            chunks = engine.call(api.exec_start, exec_id, stream=True, demux=True, retry=False)
        else:
            chunks = _feeding(engine, exec_id, stdin)
        for stdout, stderr in chunks:
            if stdout:
                out.add(stdout)
                if on_stdout is not None:
                    on_stdout(stdout)
            if stderr:
                err.add(stderr)
                if on_stderr is not None:
                    on_stderr(stderr)
        code = engine.call(api.exec_inspect, exec_id)["ExitCode"]
    except docker.errors.NotFound as exc:
        raise ContainerVanished(f"container {container_id[:12]} is gone") from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # container not running
            raise ContainerVanished(
                f"container {container_id[:12]} is not running: {exc.explanation}"
            ) from exc
        raise
    except (*TRANSIENT, OSError, urllib3.exceptions.HTTPError) as exc:
        # The engine went away while the command ran (restart, crash).
        raise EngineUnavailable(f"the Docker engine stopped answering: {exc}") from exc
    return ExecResult(
        code if code is not None else -1,
        out.data(),
        err.data(),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
    )


def _feeding(
    engine: Engine, exec_id: str, stdin: Iterable[bytes]
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Start an exec attached to a raw socket: a thread writes ``stdin`` and then
    closes the write side (the command sees end of input), while this generator
    yields the command's (stdout, stderr) frames."""
    sock = engine.call(engine.client.api.exec_start, exec_id, socket=True, retry=False)
    raw: socket.socket = getattr(sock, "_sock", sock)
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for chunk in stdin:
                raw.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the command stopped reading (it exited): its exit code says why
        except BaseException as exc:  # re-raised by the reader below
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=feed, name="exec-stdin", daemon=True)
    writer.start()
    try:
        frames = docker.utils.socket.frames_iter(sock, tty=False)  # type: ignore[no-untyped-call]
        for stream, data in frames:
            if stream == docker.utils.socket.STDOUT:
                yield data, None
            elif stream == docker.utils.socket.STDERR:
                yield None, data
    finally:
        writer.join(timeout=5)
        sock.close()
    if failure:
        raise failure[0]


class Capped:
    """Keeps the first ``limit`` bytes of a stream and notes whether more came."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = io.BytesIO()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - self.buffer.tell()
        if room > 0:
            self.buffer.write(chunk[:room])
        if len(chunk) > room:
            self.truncated = True

    def data(self) -> bytes:
        return self.buffer.getvalue()
