"""Behaviour every Runtime must show, checked on the Docker runtime (the real engine) and
on the fake used by unit tests. A Kubernetes runtime would be added to ``RUNTIMES``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from restorebox.runtime import ContainerSpec, Endpoint, Runtime
from restorebox.runtime import labels as L
from restorebox.runtime.docker import DockerRuntime
from tests.fakes import FakeRuntime

pytestmark = pytest.mark.integration
IMAGE = "restorebox/postgres:17"


@pytest.fixture(params=["docker", "store", "fake"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "fake":
        yield FakeRuntime()
        return
    docker: Runtime = request.getfixturevalue("docker_runtime")
    if request.param == "store":  # the store's runtime, wrapping Docker's (the suite's store)
        from restorebox.settings import Settings
        from restorebox.storage.opening import open_store

        state_dir = request.getfixturevalue("tmp_path") / "state"
        docker, store = open_store(Settings(state_dir=state_dir), docker, "contract")
        if store.mode == "overlay":
            pytest.skip(f"no store here: {store.reason}")
    yield docker
    for container in docker.list_managed({L.INSTANCE: "contract"}):
        docker.remove(container.id)
    docker.prune({L.INSTANCE: "contract"}, set())


def spec(sandbox: str, password: str = "pw-in-a-file") -> ContainerSpec:  # noqa: S107
    return ContainerSpec(
        image=IMAGE,
        name=f"restorebox-contract-{sandbox}",
        env={"POSTGRES_USER": "u", "POSTGRES_DB": "d", "POSTGRES_PASSWORD_FILE": "/run/secrets/p"},
        labels=L.for_sandbox("contract", sandbox, ""),
        secret_files={"/run/secrets/p": password.encode()},
    )


def test_start_gives_a_loopback_endpoint_and_the_sandbox_is_found_by_label(
    runtime: Runtime,
) -> None:
    sid = secrets.token_hex(4)
    container = runtime.start(spec(sid))
    assert container.endpoint is not None
    assert container.endpoint.host == "127.0.0.1"
    assert runtime.inspect(container.id) == container
    found = runtime.list_managed({L.INSTANCE: "contract", L.SANDBOX: sid})
    assert [c.id for c in found] == [container.id]
    assert runtime.list_managed({L.INSTANCE: "contract", L.SANDBOX: "nobody"}) == []


def test_remove_is_idempotent_and_prune_clears_what_is_left(runtime: Runtime) -> None:
    a, b = secrets.token_hex(4), secrets.token_hex(4)
    first = runtime.start(spec(a))
    second = runtime.start(spec(b))
    runtime.remove(first.id)
    runtime.remove(first.id)  # gone already: not an error
    assert runtime.inspect(first.id) is None
    # Nothing of a removed sandbox is left to prune; a kept sandbox's isolation stays.
    assert runtime.prune({L.INSTANCE: "contract"}, keep={b}) == []
    assert runtime.inspect(second.id) is not None
    runtime.remove(second.id)


def test_secret_files_reach_the_server_but_not_its_configuration(
    docker_runtime: DockerRuntime,
) -> None:
    password = secrets.token_urlsafe(16)
    container = docker_runtime.start(spec(secrets.token_hex(4), password))
    try:
        assert container.endpoint is not None
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host=container.endpoint.host,
                    port=container.endpoint.port,
                    user="u",
                    password=password,
                    dbname="d",
                    connect_timeout=2,
                ) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        attrs: dict[str, Any] = docker_runtime.client.api.inspect_container(container.id)
        assert password not in str(attrs)
    finally:
        docker_runtime.remove(container.id)


def test_exec_streams_output_and_keeps_only_a_bounded_part(
    docker_runtime: DockerRuntime,
) -> None:
    container = docker_runtime.start(spec(secrets.token_hex(4)))
    seen = [0]
    try:
        result = docker_runtime.exec(
            container.id,
            ["sh", "-c", "head -c 50000000 /dev/zero; head -c 30000000 /dev/zero >&2; exit 3"],
            on_stderr=lambda chunk: seen.__setitem__(0, seen[0] + len(chunk)),
            max_output=1000,
        )
        assert result.exit_code == 3
        assert len(result.stdout) == 1000
        assert result.stdout_truncated
        assert len(result.stderr) == 1000
        assert result.stderr_truncated
        assert seen[0] == 30_000_000  # every stderr byte was streamed to the callback
    finally:
        docker_runtime.remove(container.id)


def connect(endpoint: Endpoint, password: str = "pw-in-a-file") -> psycopg.Connection[Any]:  # noqa: S107
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(
                host=endpoint.host,
                port=endpoint.port,
                user="u",
                password=password,
                dbname="d",
                connect_timeout=2,
                autocommit=True,
            )
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.1)


def test_a_replacement_takes_over_the_endpoint_and_the_old_container_goes(
    runtime: Runtime,
) -> None:
    sid = secrets.token_hex(4)
    first = runtime.start(spec(sid))
    again = runtime.start(replace(spec(sid), replaces=first.id))
    assert again.id != first.id
    assert again.endpoint == first.endpoint
    deadline = time.monotonic() + 30
    while [c.id for c in runtime.list_managed({L.INSTANCE: "contract", L.SANDBOX: sid})] != [
        again.id
    ]:
        assert time.monotonic() < deadline, "the replaced container stayed"
        time.sleep(0.1)
    runtime.remove(again.id)
    assert runtime.prune({L.INSTANCE: "contract"}, set()) == []  # nothing left behind


def test_a_replacement_is_a_new_server_behind_the_same_port(
    docker_runtime: DockerRuntime,
) -> None:
    sid = secrets.token_hex(4)
    first = docker_runtime.start(spec(sid))
    assert first.endpoint is not None
    with connect(first.endpoint) as conn:
        conn.execute("CREATE TABLE written_before (x int)")
    again = docker_runtime.start(replace(spec(sid), replaces=first.id))
    try:
        assert again.endpoint == first.endpoint
        with connect(first.endpoint) as conn:
            assert conn.execute("SELECT to_regclass('written_before')").fetchone() == (None,)
    finally:
        docker_runtime.remove(again.id)
    import docker as docker_sdk

    engine = docker_sdk.from_env()
    deadline = time.monotonic() + 10
    while engine.api.containers(all=True, filters={"label": f"{L.SANDBOX}={sid}"}):
        assert time.monotonic() < deadline, "the old container (deleted on a thread) stayed"
        time.sleep(0.1)
    assert engine.networks.list(filters={"label": f"{L.SANDBOX}={sid}"}) == []


def test_isolation_made_ahead_serves_one_sandbox_each_and_is_cleared(
    docker_runtime: DockerRuntime,
) -> None:
    """Docker's anchors made ahead (a network and a container publishing the port):
    starts join one each, a reset keeps it, prune spares the waiting ones, cool_down
    removes them."""
    import docker as docker_sdk

    engine = docker_sdk.from_env()
    instance = f"pool-{secrets.token_hex(3)}"
    pool_labels = {L.MANAGED: "true", L.INSTANCE: instance}
    pooled = {"label": [f"{L.INSTANCE}={instance}", "restorebox.pool=true"]}
    template = ContainerSpec(image=IMAGE, name="", env={}, labels=pool_labels)
    docker_runtime.warm_up(template, 2)
    try:
        deadline = time.monotonic() + 30
        while len(engine.api.containers(filters={**pooled, "status": "running"})) < 2:
            assert time.monotonic() < deadline, "the pool did not fill"
            time.sleep(0.1)
        assert len(engine.networks.list(filters=pooled)) == 2
        assert docker_runtime.prune(pool_labels, set()) == []  # waiting: not garbage
        made = replace(spec("a"), labels=L.for_sandbox(instance, "a", ""))
        container = docker_runtime.start(made)
        mode = engine.containers.get(container.id).attrs["HostConfig"]["NetworkMode"]
        anchor = engine.containers.get(mode.removeprefix("container:"))
        assert anchor.name.startswith("restorebox-pool-")
        assert docker_runtime.list_managed(pool_labels) == [container]  # anchors are not sandboxes
        again = docker_runtime.start(replace(made, replaces=container.id))  # a reset
        assert engine.containers.get(again.id).attrs["HostConfig"]["NetworkMode"] == mode
        assert again.endpoint == container.endpoint
        docker_runtime.remove(again.id)
        assert engine.containers.list(all=True, filters={"id": anchor.id}) == []
        [network] = anchor.attrs["NetworkSettings"]["Networks"]
        assert engine.networks.list(names=[network]) == []  # it served that sandbox only
        while len(engine.api.containers(filters={**pooled, "status": "running"})) < 2:
            assert time.monotonic() < deadline + 30  # made again
            time.sleep(0.1)
    finally:
        docker_runtime.cool_down(pool_labels)
    mine = {"label": f"{L.INSTANCE}={instance}"}
    deadline = time.monotonic() + 10
    while engine.api.containers(all=True, filters=mine):  # the reset's old one, on a thread
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert engine.networks.list(filters=mine) == []


def test_a_prune_while_a_start_makes_its_anchor_spares_it(
    docker_runtime: DockerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker's anchor for one sandbox (no pool): between its network's creation and its
    start the network is empty and the anchor joined by nothing. A reconciler's prune
    running in that moment (it runs on its own thread) must not take them for garbage."""
    from restorebox.runtime.docker import anchors as docker_anchors

    instance = f"prune-{secrets.token_hex(3)}"
    pruned: list[str] = []
    original = docker_anchors.start_container

    def prune_then_start(call: Any, api: Any, container_id: str) -> None:
        pruned.extend(docker_runtime.prune({L.MANAGED: "true", L.INSTANCE: instance}, set()))
        original(call, api, container_id)

    monkeypatch.setattr(docker_anchors, "start_container", prune_then_start)
    made = replace(spec("a"), labels=L.for_sandbox(instance, "a", ""))
    container = docker_runtime.start(made)
    try:
        assert pruned == []
        assert container.running
        assert container.endpoint is not None
    finally:
        docker_runtime.remove(container.id)
        docker_runtime.prune({L.MANAGED: "true", L.INSTANCE: instance}, set())


def test_a_reset_prepared_ahead_only_starts_and_what_is_prepared_goes_with_it(
    docker_runtime: DockerRuntime,
) -> None:
    """Docker's ``prepare``: the reset's container is created ahead (hidden from the
    listings until it runs) and the reset starts exactly that one; a prepared container
    never started is removed with the sandbox, or pruned once its sandbox is gone."""
    import docker as docker_sdk

    engine = docker_sdk.from_env()
    sid = secrets.token_hex(4)
    first = docker_runtime.start(spec(sid))
    nxt = replace(spec(sid), replaces=first.id)
    docker_runtime.prepare(nxt)
    standby = {"label": [f"{L.SANDBOX}={sid}", "restorebox.standby=true"], "status": "created"}
    deadline = time.monotonic() + 30
    while not engine.api.containers(all=True, filters=standby):
        assert time.monotonic() < deadline, "nothing was prepared"
        time.sleep(0.1)
    [prepared] = engine.containers.list(all=True, filters=standby)
    assert [c.id for c in docker_runtime.list_managed({L.SANDBOX: sid})] == [first.id]
    again = docker_runtime.start(nxt)
    assert again.id == prepared.id
    assert again.endpoint == first.endpoint
    with connect(again.endpoint) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # The low-level listing polls: the SDK's list() inspects each container it finds, and
    # one the runtime replaces or removes in between is a 404.
    # Prepared again, then the sandbox removed: nothing of it is left.
    docker_runtime.prepare(replace(spec(sid), replaces=again.id))
    while not engine.api.containers(all=True, filters=standby):
        assert time.monotonic() < deadline + 30, "nothing was prepared"
        time.sleep(0.1)
    docker_runtime.remove(again.id)
    while engine.api.containers(all=True, filters={"label": f"{L.SANDBOX}={sid}"}):
        assert time.monotonic() < deadline + 60, "something of the sandbox stayed"
        time.sleep(0.1)
    # A prepared container whose sandbox is gone (the service died) is pruned.
    orphan = docker_runtime.start(spec(sid))
    docker_runtime.prepare(replace(spec(sid), replaces=orphan.id))
    while not engine.api.containers(all=True, filters=standby):
        assert time.monotonic() < deadline + 90, "nothing was prepared"
        time.sleep(0.1)
    engine.containers.get(orphan.id).remove(force=True)  # outside the runtime
    pruned = docker_runtime.prune({L.INSTANCE: "contract"}, set())
    assert any(name.startswith(f"restorebox-contract-{sid}-") for name in pruned)
    assert engine.api.containers(all=True, filters={"label": f"{L.SANDBOX}={sid}"}) == []
