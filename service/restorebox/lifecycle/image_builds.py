"""Sandbox images still being built while the service already serves.

On a bare machine ``scripts/serve`` builds the default major's image first, starts the
service, and builds the other images in the background. Each build announces itself
with ``<state dir>/image-builds/<image>.building`` holding its pid (removed when it
ends; ``<image>.failed`` keeps the end of its log when it fails). A sandbox whose image
is being built waits for it in phase "waiting for image ...", and ``/healthz`` and the
dashboard say which images are ready. Images nobody is building are the engine's
business as before: present, pulled from a registry, or ``image_unavailable``."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from restorebox.errors import Cancelled, ImageUnavailable
from restorebox.runtime.base import Runtime

BUILDS_DIR = "image-builds"  # under the state directory
ImageState = Literal["ready", "building", "failed", "absent"]
POLL_SECONDS = 2.0
# A build that announced itself but never ends (a hung debootstrap) is not waited for
# beyond this.
WAIT_LIMIT_SECONDS = 30 * 60


def marker_stem(image: str) -> str:
    """The file name a build of ``image`` announces itself under (scripts/build-images
    makes the same: every character outside [A-Za-z0-9_.-] becomes _)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", image)


class ImageBuilds:
    def __init__(self, directory: Path, runtime: Runtime) -> None:
        self.directory = directory
        self.runtime = runtime

    def state(self, image: str) -> ImageState:
        if self.runtime.image_id(image) is not None:
            return "ready"
        if self._building(image):
            return "building"
        if self._failure(image) is not None:
            return "failed"
        return "absent"

    def wait(
        self,
        image: str,
        on_wait: Callable[[], None],
        cancelled: threading.Event,
        limit_seconds: float = WAIT_LIMIT_SECONDS,
    ) -> None:
        """Return once ``image`` exists, at once when nobody is building it. Raises
        ImageUnavailable when its build ends without it, Cancelled when the sandbox is."""
        if not self._building(image) or self.runtime.image_id(image) is not None:
            return
        on_wait()
        deadline = time.monotonic() + limit_seconds
        while self._building(image) and self.runtime.image_id(image) is None:
            if cancelled.wait(POLL_SECONDS):
                raise Cancelled("the sandbox was cancelled while its image was being built")
            if time.monotonic() > deadline:
                raise ImageUnavailable(
                    f"image {image} has been building for over {limit_seconds / 60:g} minutes; "
                    f"see {self.directory}/build.log"
                )
        if self.runtime.image_id(image) is None:
            failure = self._failure(image) or "the build stopped"
            raise ImageUnavailable(
                f"building image {image} failed ({failure}); build it again with "
                "scripts/build-images, or configure another image (RESTOREBOX_IMAGES)"
            )

    def _building(self, image: str) -> bool:
        try:
            pid = int((self.directory / f"{marker_stem(image)}.building").read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # the build was killed without tidying up
        except PermissionError:
            return True  # alive, someone else's
        return True

    def _failure(self, image: str) -> str | None:
        try:
            text = (self.directory / f"{marker_stem(image)}.failed").read_text()
        except OSError:
            return None
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no message"
