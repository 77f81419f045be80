"""A sparse XFS image file, loop-mounted: a filesystem that clones files on a host whose own
filesystem cannot (ext4). The file takes only what is written into it; it is grown (file,
loop device, filesystem) when the store runs short."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("restorebox.storage")


class LoopUnavailable(Exception):
    """The image cannot be made or mounted here; the message says why."""


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoopUnavailable(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise LoopUnavailable(f"{' '.join(argv[:2])}: {reason[-1] if reason else 'failed'}")
    return done.stdout


def mount_source(mountpoint: Path) -> str | None:
    """The device mounted at ``mountpoint`` (from /proc/self/mountinfo), or None."""
    target = str(mountpoint.resolve())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and _unescape(fields[4]) == target:
            after = fields[fields.index("-") + 1 :]
            found = after[1] if len(after) > 1 else None  # the last mount on top wins
    return found


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape")


def ensure_mounted(image: Path, mountpoint: Path, size: int) -> None:
    """Mount ``image`` at ``mountpoint``, making it first (a sparse file of ``size`` bytes
    with an XFS filesystem) when it does not exist. A mount left by an earlier run (the
    service was killed) is used as it is."""
    if mount_source(mountpoint) is not None:
        return
    if os.geteuid() != 0:
        raise LoopUnavailable("loop-mounting a filesystem image needs root")
    if shutil.which("mkfs.xfs") is None:
        raise LoopUnavailable("mkfs.xfs is missing (Debian package xfsprogs)")
    mountpoint.mkdir(parents=True, exist_ok=True)
    if not image.exists():
        partial = image.with_suffix(".partial")
        with partial.open("wb") as made:
            made.truncate(size)
        _run("mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(partial))
        partial.rename(image)
        log.info("store image made", extra={"image": str(image), "bytes": size})
    # Direct I/O: the loop device writes to the image file without going through the page
    # cache a second time (measured here: 2 GB written and synced in 1.2 s, against 8.8 s
    # buffered and 1.1 s on the host's ext4 itself).
    device = _run("losetup", "--find", "--show", "--direct-io=on", str(image)).strip()
    try:
        _run("mount", "-o", "noatime", device, str(mountpoint))
    except LoopUnavailable:
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False, timeout=30)
        raise
    log.info("store image mounted", extra={"image": str(image), "at": str(mountpoint)})


def grow(image: Path, mountpoint: Path, size: int) -> None:
    """Grow the image to ``size`` bytes and its filesystem with it (online)."""
    device = mount_source(mountpoint)
    if device is None or not device.startswith("/dev/loop"):
        raise LoopUnavailable(f"{mountpoint} is not a loop-mounted image")
    if image.stat().st_size >= size:
        return
    with image.open("r+b") as file:
        file.truncate(size)
    _run("losetup", "-c", device)
    _run("xfs_growfs", "-d", str(mountpoint))
    log.info("store image grown", extra={"image": str(image), "bytes": size})


def detach(mountpoint: Path) -> bool:
    """Unmount (lazily: sandboxes still using it keep it until they go) and free the loop
    device. False when nothing was mounted there."""
    device = mount_source(mountpoint)
    if device is None:
        return False
    _run("umount", "-l", str(mountpoint))
    if device.startswith("/dev/loop"):
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False, timeout=30)
    return True


def orphaned_mounts() -> list[Path]:
    """Loop mounts of restorebox store images whose image file was deleted (the state
    directory of a vanished instance): what ``restorebox gc`` detaches."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        after = fields[fields.index("-") + 1 :] if "-" in fields else []
        if len(after) < 2 or not after[1].startswith("/dev/loop"):
            continue
        backing = Path("/sys/block", Path(after[1]).name, "loop", "backing_file")
        try:
            file = backing.read_text().strip()
        except OSError:
            continue
        if file.endswith(f"{STORE_IMAGE} (deleted)"):
            found.append(Path(_unescape(fields[4])))
    return found


STORE_IMAGE = "store.xfs"
