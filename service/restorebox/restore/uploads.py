"""Backups into the sandbox: archives copied in (pg_restore -j needs a file it can seek),
plain SQL opened for streaming, and how far the sandbox's tools have read."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from restorebox.backups.catalog import Member
from restorebox.backups.model import Backup
from restorebox.backups.wrapped import open_wrapped
from restorebox.errors import Cancelled, DiskLimitExceeded
from restorebox.models import Progress
from restorebox.restore.commands import PROGRESS_SCRIPT
from restorebox.restore.plan import RestorePlan
from restorebox.restore.session import Session
from restorebox.runtime import UploadFile

TARGET_DIR = "/tmp"  # noqa: S108 -- inside the container: present and world-writable in every postgres image
UPLOAD_ROOT = "restorebox"
ProgressSink = Callable[[Progress], None]
MemberLister = Callable[[str, Path], list[Member]]


def upload(
    session: Session, plan: RestorePlan, members: MemberLister, on_progress: ProgressSink
) -> list[str | None]:
    """Stage the archives in the container (pg_restore -j needs a file it can seek);
    plain files are not staged (None): they stream straight into psql."""
    files: list[UploadFile] = []
    remotes: list[str | None] = []
    for index, backup in enumerate(plan.backups):
        folder = f"{UPLOAD_ROOT}/{index}"
        if streams(backup):
            remotes.append(None)
            continue
        if backup.wrapper is not None:
            # Members stream from inside the wrapper, checked as they were described.
            wrapped = open_wrapped(backup.path, backup.wrapper)
            assert wrapped is not None
            if wrapped.directory:
                base = f"{folder}/dump"
                files += [
                    UploadFile(backup.path, f"{base}/{e.name}", e.size, e.open)
                    for e in wrapped.entries
                ]
            else:
                entry = wrapped.single
                base = f"{folder}/{entry.name}"
                files.append(UploadFile(backup.path, base, entry.size, entry.open))
            remotes.append(f"{TARGET_DIR}/{base}")
            continue
        base = f"{folder}/{backup.path.name}"
        remotes.append(f"{TARGET_DIR}/{base}")
        # Checked again now (a member may have changed since it was described).
        for member in members(backup.name, backup.path):
            name = f"{base}/{member.name}" if backup.path.is_dir() else base
            files.append(UploadFile(member.path, name, member.size))
    if not files:
        return remotes
    total = sum(f.size for f in files)
    if session.disk_limit and total > session.disk_limit:  # known before a byte is copied
        raise DiskLimitExceeded.at(total, session.disk_limit, "for its backups alone")
    last = [0.0]

    def progress(sent: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or sent == total:
            last[0] = now
            on_progress(Progress(phase="uploading", bytes_done=sent, bytes_total=total))
        if session.cancelled.is_set():
            raise Cancelled("the sandbox was deleted while its backup was uploading")
        session.check_time()

    on_progress(Progress(phase="uploading", bytes_done=0, bytes_total=total))
    session.runtime.copy_in(session.container_id, TARGET_DIR, files, progress)
    return remotes


def streams(backup: Backup) -> bool:
    """Plain SQL (compressed or not, loose or the one file of a wrapper) goes to psql
    on its standard input: no staged copy, and progress is the bytes sent."""
    return backup.format == "plain"


def stream_opener(backup: Backup, members: MemberLister) -> UploadFile:
    if backup.wrapper is not None:
        wrapped = open_wrapped(backup.path, backup.wrapper)
        assert wrapped is not None
        entry = wrapped.single
        return UploadFile(backup.path, entry.name, entry.size, entry.open)
    # Checked again now (it may have changed since it was described).
    (member,) = members(backup.name, backup.path)
    return UploadFile(member.path, member.name, member.size)


def bytes_read(session: Session, remote: str) -> int:
    try:
        result = session.runtime.exec(
            session.container_id, ["timeout", "10", "sh", "-c", PROGRESS_SCRIPT]
        )
    except Exception:  # progress is best effort; the restore itself reports failures
        return 0
    positions: dict[str, int] = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        pos, _, path = line.partition(" ")
        if path.startswith(remote) and pos.isdigit():
            positions[path] = max(positions.get(path, 0), int(pos))
    return sum(positions.values())


def cleanup_uploads(session: Session) -> None:
    session.runtime.exec(
        session.container_id,
        [*session.timeout_argv(), "rm", "-rf", f"{TARGET_DIR}/{UPLOAD_ROOT}"],
        user="root",
    )
