import io
import tarfile
from pathlib import Path

from restorebox.runtime import Runtime
from restorebox.runtime.base import UploadFile
from restorebox.runtime.docker import DockerRuntime
from restorebox.runtime.docker.archives import tar_stream
from tests.fakes import FakeRuntime


def test_docker_and_fake_runtimes_honour_the_protocol() -> None:
    assert isinstance(DockerRuntime(), Runtime)
    assert isinstance(FakeRuntime(), Runtime)


def test_tar_stream_is_a_valid_archive_and_reports_progress(tmp_path: Path) -> None:
    a = tmp_path / "a.sql"
    a.write_bytes(b"x" * 1000)
    b = tmp_path / "b.dat"
    b.write_bytes(b"y" * 513)
    seen: list[int] = []
    data = b"".join(
        tar_stream(
            [UploadFile(a, "r/0/a.sql", 1000), UploadFile(b, "r/1/dir/b.dat", 513)], seen.append
        )
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == ["r", "r/0", "r/0/a.sql", "r/1", "r/1/dir", "r/1/dir/b.dat"]
        member = tar.extractfile("r/1/dir/b.dat")
        assert member is not None
        assert member.read() == b"y" * 513
    assert seen[-1] == 1513
