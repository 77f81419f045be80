"""Issue 18, part 11: a sandbox whose image scripts/serve is still building waits for it,
and is told why when the build fails; images nobody builds are not waited for."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from restorebox.errors import Cancelled, ImageUnavailable
from restorebox.lifecycle.image_builds import ImageBuilds, marker_stem


class Images:
    """The one thing ImageBuilds asks a runtime: is this image there?"""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, str]] = {}

    def image_id(self, image: str) -> str | None:
        return f"sha256:{image}" if image in self.images else None


IMAGE = "restorebox/postgres:15"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("restorebox.lifecycle.image_builds.POLL_SECONDS", 0.05)


def builds(tmp_path: Path) -> tuple[ImageBuilds, Images]:
    runtime = Images()
    return ImageBuilds(tmp_path, runtime), runtime  # type: ignore[arg-type]


def announce(tmp_path: Path, pid: int) -> Path:
    marker = tmp_path / f"{marker_stem(IMAGE)}.building"
    marker.write_text(f"{pid}\n")
    return marker


def test_the_marker_name_is_the_one_build_images_writes() -> None:
    """scripts/build-images makes the name with sed; both must agree."""
    made = subprocess.run(
        ["sed", "s/[^A-Za-z0-9_.-]/_/g"], input=IMAGE, capture_output=True, text=True
    ).stdout
    assert made == marker_stem(IMAGE) == "restorebox_postgres_15"


def test_an_image_nobody_builds_is_not_waited_for(tmp_path: Path) -> None:
    image_builds, _ = builds(tmp_path)
    waited: list[bool] = []
    image_builds.wait(IMAGE, lambda: waited.append(True), threading.Event())
    assert waited == []
    assert image_builds.state(IMAGE) == "absent"
    announce(tmp_path, 2**22 + 12345)  # a build that died without tidying up
    assert image_builds.state(IMAGE) == "absent"


def test_a_sandbox_waits_for_an_image_being_built(tmp_path: Path) -> None:
    image_builds, runtime = builds(tmp_path)
    marker = announce(tmp_path, os.getpid())
    assert image_builds.state(IMAGE) == "building"
    waited: list[bool] = []

    def finish() -> None:
        runtime.images[IMAGE] = {}
        marker.unlink()

    timer = threading.Timer(0.3, finish)
    timer.start()
    image_builds.wait(IMAGE, lambda: waited.append(True), threading.Event())
    timer.join()
    assert waited == [True]
    assert image_builds.state(IMAGE) == "ready"


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    image_builds, _ = builds(tmp_path)
    marker = announce(tmp_path, os.getpid())

    def fail() -> None:
        (tmp_path / f"{marker_stem(IMAGE)}.failed").write_text("E: Unable to fetch\n")
        marker.unlink()

    threading.Timer(0.3, fail).start()
    with pytest.raises(ImageUnavailable, match="Unable to fetch"):
        image_builds.wait(IMAGE, lambda: None, threading.Event())
    assert image_builds.state(IMAGE) == "failed"


def test_waiting_ends_when_the_sandbox_is_cancelled(tmp_path: Path) -> None:
    image_builds, _ = builds(tmp_path)
    announce(tmp_path, os.getpid())
    cancelled = threading.Event()
    threading.Timer(0.2, cancelled.set).start()
    with pytest.raises(Cancelled):
        image_builds.wait(IMAGE, lambda: None, cancelled)
