"""Archives the engine unpacks into containers: secret files before a start, and the
backups a restore reads, streamed chunk by chunk."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator, Sequence

from restorebox.errors import EngineUnavailable
from restorebox.runtime.base import ProgressCallback, UploadFile
from restorebox.runtime.docker.engine import Engine

_CHUNK = 1024 * 1024


def copy_in(
    engine: Engine,
    container_id: str,
    target_dir: str,
    files: Sequence[UploadFile],
    on_progress: ProgressCallback | None = None,
) -> None:
    """Stream ``files`` into ``target_dir`` of the container (never held in memory)."""
    stream = tar_stream(files, on_progress)
    ok = engine.call(engine.client.api.put_archive, container_id, target_dir, stream, retry=False)
    if not ok:
        raise EngineUnavailable(f"could not copy files into {container_id[:12]}")


def secret_tar(files: dict[str, bytes]) -> bytes:
    """A small in-memory tar of secret files (absolute paths), readable by the server and
    deletable by it once read (its entrypoint does, before any snapshot can be taken)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for path, content in files.items():
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    # The file's own folder lets the server's user delete it (once read)
                    # without listing it; the folders above are as usual.
                    leaf = depth == len(parts) - 1
                    info.type, info.mode = tarfile.DIRTYPE, 0o733 if leaf else 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode = len(content), 0o444
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tar_stream(
    files: Sequence[UploadFile], on_progress: ProgressCallback | None
) -> Iterator[bytes]:
    """A tar archive of ``files``, produced chunk by chunk so nothing is held in memory."""
    sent = 0
    now = int(time.time())
    made_dirs: set[str] = set()
    for upload in files:
        parts = upload.name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in made_dirs:
                made_dirs.add(directory)
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                yield info.tobuf(format=tarfile.PAX_FORMAT)
        info = tarfile.TarInfo(upload.name)
        info.size, info.mode, info.mtime = upload.size, 0o644, now
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        remaining = upload.size
        with upload.open() as handle:
            while remaining > 0:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"{upload.source} shrank while it was being copied")
                remaining -= len(chunk)
                sent += len(chunk)
                yield chunk
                if on_progress is not None:
                    on_progress(sent)
        if upload.size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - upload.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
