"""Issue 2: empty sandboxes end to end on the real engine."""

from __future__ import annotations

import io
from typing import Any

import docker
import psycopg
import pytest

from restorebox.runtime import labels
from restorebox.runtime.docker import DockerRuntime
from tests.conftest import AUTH, Api, query

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("major", ["15", "17"])
def test_create_connect_write_delete(api: Api, major: str, docker_runtime: DockerRuntime) -> None:
    sandbox = api.create(postgres=major, ttl_seconds=600)
    url = sandbox["connection_url"]
    assert url.startswith("postgresql://restorebox:")
    assert "@127.0.0.1:" in url
    assert sandbox["postgres_version"] == major

    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None
        assert int(version[0]) // 10000 == int(major)
        conn.execute("CREATE TABLE widgets (id int primary key, name text)")
        conn.execute("INSERT INTO widgets VALUES (1, 'sprocket')")
        assert conn.execute("SELECT name FROM widgets").fetchall() == [("sprocket",)]
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)

    containers = api.containers()
    assert len(containers) == 1
    attrs = docker_runtime.client.api.inspect_container(containers[0].id)
    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == api.settings.sandbox_memory_bytes
    assert host["PidsLimit"] == api.settings.sandbox_pids
    assert attrs["Config"]["User"] == "postgres"
    assert attrs["Config"]["Labels"][labels.MANAGED] == "true"
    # The port is published by the sandbox's anchor, whose network namespace it joins.
    anchor_id = host["NetworkMode"].removeprefix("container:")
    anchor = docker_runtime.client.api.inspect_container(anchor_id)
    bindings = anchor["NetworkSettings"]["Ports"]["5432/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert f"@127.0.0.1:{bindings[0]['HostPort']}/" in url
    # Nothing from the host but, with a store, the sandbox's own data directory.
    mounts = [(m["Source"], m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    if api.services.store.mode == "overlay":
        assert mounts == [], "sandboxes must not mount anything from the host"
    else:
        data_dir = attrs["Config"]["Labels"][labels.DATA_DIR]
        assert mounts == [(data_dir, "/var/lib/postgresql/data", True)]
        assert data_dir.startswith(f"{api.services.store.path}/instances/")

    response = api.delete(f"/v1/sandboxes/{sandbox['id']}")
    assert response.status_code == 204
    assert api.containers() == []
    gone = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert gone["status"] == "deleted"
    assert gone["connection_url"] is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)


def test_create_without_wait_answers_202_then_becomes_ready(api: Api) -> None:
    response = api.post("/v1/sandboxes", {"ttl_seconds": 300})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "creating"
    assert body["connection_url"] is None
    assert response.headers["Location"] == f"/v1/sandboxes/{body['id']}"
    sandbox = api.services.manager.wait(body["id"], timeout=60)
    assert sandbox.status == "ready"
    listed = api.get("/v1/sandboxes").json()["sandboxes"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert query(listed[0]["connection_url"], "select 1") == [(1,)]


def test_readiness_timeout_fails_with_log_and_leaves_nothing(make_api: Any) -> None:
    # An image whose server never starts: the readiness check must give up, attach the
    # container's log to the error, and remove the container.
    client = docker.from_env()
    dockerfile = (
        b"FROM restorebox/postgres:15\n"
        b'ENTRYPOINT ["/bin/sh", "-c", "echo never-ready-marker; exec sleep 600"]\n'
    )
    client.images.build(fileobj=io.BytesIO(dockerfile), tag="restorebox/test-never-ready", rm=True)
    with make_api(images={15: "restorebox/test-never-ready"}, ready_timeout_seconds=3) as api:
        sandbox = api.create(expect="failed", postgres="15")
        assert sandbox["error"]["code"] == "start_timeout"
        assert "never-ready-marker" in sandbox["error"]["message"]
        assert api.containers() == []


def test_every_endpoint_but_healthz_needs_the_token(api: Api) -> None:
    client = api.client
    assert client.get("/healthz").status_code == 200
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, methods in schema["paths"].items():
        if path == "/healthz":
            continue
        concrete = path.replace("{sandbox_id}", "abc").replace("{name}", "x.sql")
        for method in methods:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                response = client.request(method.upper(), concrete, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["code"] == "unauthorized"
                checked += 1
    assert checked >= 15


def test_unknown_sandbox_is_404_with_code(api: Api) -> None:
    for method in ("GET", "DELETE"):
        response = api.client.request(method, "/v1/sandboxes/nope", headers=AUTH)
        assert response.status_code == 404
        assert response.json()["code"] == "sandbox_not_found"
        assert "nope" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"ttl_seconds": "soon"}, "ttl_seconds"),
        ({"ttl_seconds": 1}, "ttl_seconds"),
        ({"postgres": "sixteen"}, "postgres"),
        ({"wait": "perhaps"}, "wait"),
        ({"colour": "blue"}, "colour"),
        ({"on_error": "explode"}, "on_error"),
    ],
)
def test_invalid_bodies_are_422_with_a_message(api: Api, body: dict[str, Any], where: str) -> None:
    response = api.post("/v1/sandboxes", body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert where in payload["message"]
    assert api.containers() == []


def test_unconfigured_major_is_422(api: Api) -> None:
    response = api.post("/v1/sandboxes", {"postgres": "11"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "15, 17" in response.json()["message"]


def test_malformed_json_is_422_not_500(api: Api) -> None:
    response = api.client.post(
        "/v1/sandboxes", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
