"""Which engine calls the Docker runtime retries: reads and idempotent calls yes; calls
that must not happen twice (create, exec start, a one-shot upload) never blindly."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from restorebox.errors import EngineUnavailable
from restorebox.runtime import ContainerSpec
from restorebox.runtime.docker import DockerRuntime

FLAKE = requests.exceptions.ConnectionError("engine hiccup")


class FlakyApi:
    """The low-level docker API, failing each call's first attempt with a transient error."""

    def __init__(self, created_anyway: bool) -> None:
        self.calls: dict[str, int] = {}
        self.created_anyway = created_anyway
        self.created = False

    def _count(self, name: str) -> int:
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]

    def create_host_config(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def inspect_image(self, image: str) -> dict[str, Any]:
        if self._count("inspect_image") == 1:
            raise FLAKE
        return {}

    def create_container(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("name", "").endswith("-anchor"):  # the sandbox's anchor: made
            self._count("create_anchor")
            return {"Id": "anchor"}
        self._count("create_container")
        self.created = self.created_anyway  # the engine may have done it before the error
        raise FLAKE

    def inspect_container(self, name: str) -> dict[str, Any]:
        if name == "anchor":
            return {
                "Id": "anchor",
                "State": {"Running": True},
                "NetworkSettings": {
                    "Networks": {"restorebox-x": {}},
                    "Ports": {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5"}]},
                },
            }
        self._count("inspect_container")
        if not self.created:
            import docker.errors

            raise docker.errors.NotFound("no such container")
        return {
            "Id": "abc",
            "Name": "/restorebox-x",
            "Config": {"Labels": {"restorebox.sandbox": "x"}},
            "State": {"Running": True},
            "NetworkSettings": {"Ports": {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5"}]}},
        }

    def put_archive(self, *args: Any) -> bool:
        self._count("put_archive")
        raise FLAKE

    def start(self, container: str) -> None:
        if container != "anchor" and self._count("start") == 1:
            raise FLAKE

    def remove_container(self, *args: Any, **kwargs: Any) -> None:
        self._count("remove_container")

    def remove_network(self, *args: Any) -> None:
        self._count("remove_network")

    def exec_create(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        self._count("exec_create")
        return {"Id": "e"}

    def exec_start(self, *args: Any, **kwargs: Any) -> Any:
        self._count("exec_start")
        raise FLAKE


class FlakyClient:
    def __init__(self, api: FlakyApi) -> None:
        self.api = api

    class networks:
        @staticmethod
        def create(*args: Any, **kwargs: Any) -> None:
            return None


def runtime_with(api: FlakyApi) -> DockerRuntime:
    runtime = DockerRuntime()
    runtime.engine._client = FlakyClient(api)
    return runtime


SPEC = ContainerSpec(
    "img", "restorebox-x", {}, {"restorebox.sandbox": "x"}, secret_files={"/run/p": b"pw"}
)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    from restorebox.runtime.docker import engine as module

    monkeypatch.setattr(
        module,
        "engine_call",
        lambda retry_on: Retrying(
            stop=stop_after_attempt(3), retry=retry_if_exception_type(retry_on), reraise=True
        ),
    )


def test_a_create_is_never_repeated_and_a_lost_answer_is_found_by_name() -> None:
    api = FlakyApi(created_anyway=True)
    runtime = runtime_with(api)
    with pytest.raises(EngineUnavailable):  # the secret upload is one-shot: not retried
        runtime.start(SPEC)
    assert api.calls["create_container"] == 1
    assert api.calls["put_archive"] == 1
    assert api.calls["inspect_image"] == 3  # a read: retried (then again for the anchor)


def test_a_create_that_did_not_happen_is_an_error_not_a_retry() -> None:
    api = FlakyApi(created_anyway=False)
    with pytest.raises(EngineUnavailable):
        runtime_with(api).start(SPEC)
    assert api.calls["create_container"] == 1


def test_exec_start_is_not_retried() -> None:
    api = FlakyApi(created_anyway=True)
    with pytest.raises(EngineUnavailable):
        runtime_with(api).exec("abc", ["true"])
    assert api.calls["exec_start"] == 1


class StartRaceApi:
    """A start whose answer is lost; the retry meets the first still under way."""

    def __init__(self, running: bool) -> None:
        self.running = running
        self.starts = 0

    def start(self, container: str) -> None:
        import docker.errors

        self.starts += 1
        if self.starts == 1:
            raise FLAKE
        raise docker.errors.APIError("cannot start an already running container")

    def inspect_container(self, container: str) -> dict[str, Any]:
        return {"Id": container, "State": {"Running": self.running}}


def test_a_start_whose_answer_was_lost_counts_once_the_container_runs() -> None:
    from restorebox.runtime.docker.anchors import start_container

    runtime = DockerRuntime()
    api = StartRaceApi(running=True)
    start_container(runtime.engine.call, api, "abc")  # no error: it runs
    assert api.starts == 2
    with pytest.raises(EngineUnavailable):  # not running: the failure stands
        start_container(runtime.engine.call, StartRaceApi(running=False), "abc")


def test_a_start_whose_anchor_stopped_is_a_vanished_container() -> None:
    """An engine restart stops every container: joining a stopped anchor is a 409 that
    says so, answered as ``container_vanished``, not as an internal error."""
    import docker.errors

    from restorebox.errors import ContainerVanished
    from restorebox.runtime.docker.anchors import start_container

    class Conflict:
        status_code, reason, url = 409, "Conflict", "http://engine/containers/c1/start"

    class Api:
        def start(self, container_id: str) -> None:
            raise docker.errors.APIError(
                "409 Client Error",
                response=Conflict(),  # type: ignore[arg-type]
                explanation="cannot join network of a non running container: 4af3",
            )

    with pytest.raises(ContainerVanished, match="anchor"):
        start_container(lambda fn, *args, **kwargs: fn(*args, **kwargs), Api(), "c1")
