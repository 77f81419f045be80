"""Issue 5: containment of untrusted dumps and who may see what."""

from __future__ import annotations

import logging
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from restorebox.runtime.docker.anchors import NETWORK_OPTIONS
from tests.conftest import Api, exec_in_sandbox, query

pytestmark = pytest.mark.integration


def test_sandbox_is_hardened_and_alone_on_an_isolated_network(api: Api) -> None:
    sandbox = api.create()
    engine = docker.from_env()
    container = engine.containers.get(api.containers()[0].id)
    # The sandbox shares the network namespace of its anchor (the small container that
    # holds its network and published port); both are hardened.
    mode = container.attrs["HostConfig"]["NetworkMode"]
    assert mode.startswith("container:")
    anchor = engine.containers.get(mode.removeprefix("container:"))
    for each in (container, anchor):
        host = each.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"]
        assert not host["CapAdd"]
        assert not host["Privileged"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
    # No host path and no Docker socket; with a store, the sandbox's own data directory.
    assert not anchor.attrs["Mounts"]
    mounts = [(m["Source"], m["Destination"]) for m in container.attrs["Mounts"]]
    if api.services.store.mode == "overlay":
        assert mounts == []
    else:
        data_dir = container.attrs["Config"]["Labels"]["restorebox.data-dir"]
        assert mounts == [(data_dir, "/var/lib/postgresql/data")]
        assert data_dir.startswith(f"{api.services.store.path}/instances/")
    assert container.attrs["Config"]["User"] == "postgres"
    assert anchor.attrs["Config"]["User"] == "65534"  # nobody
    assert anchor.attrs["HostConfig"]["ReadonlyRootfs"]
    assert anchor.attrs["Config"]["Entrypoint"] == ["sleep", "infinity"]
    networks = anchor.attrs["NetworkSettings"]["Networks"]
    [name] = list(networks)  # one network (made ahead from the pool, or for it)
    assert name.startswith("restorebox-")
    network = engine.networks.get(name)
    assert list(network.attrs["Containers"]) == [anchor.id]  # alone on it
    options = network.attrs["Options"]
    for key, value in NETWORK_OPTIONS.items():
        assert options[key] == value
    bridge = options["com.docker.network.bridge.name"]
    assert bridge.startswith("rbx")
    # The host drops whatever the sandbox bridges would forward, and new connections
    # from them to the host (installed by scripts/ensure-docker).
    forward = subprocess.run(
        ["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True, check=True
    ).stdout
    inbound = subprocess.run(
        ["iptables", "-S", "INPUT"], capture_output=True, text=True, check=True
    ).stdout
    assert "-A DOCKER-USER -i rbx+ -j DROP" in forward
    assert "-A INPUT -i rbx+ -m conntrack --ctstate NEW -j DROP" in inbound
    api.delete(f"/v1/sandboxes/{sandbox['id']}")
    assert engine.networks.list(names=[name]) == []  # it served this sandbox only
    assert engine.containers.list(all=True, filters={"id": anchor.id}) == []


def test_meta_commands_and_copy_to_program_stay_inside_the_sandbox(
    api: Api, backups_dir: Path
) -> None:
    tag = uuid.uuid4().hex
    (backups_dir / "evil.sql").write_text(
        "CREATE TABLE t (id int);\n"
        f"\\! touch /tmp/shell-{tag}\n"
        f"\\o /tmp/out-{tag}\nSELECT 'written';\n\\o\n"
        f"COPY (SELECT 1) TO PROGRAM 'touch /tmp/program-{tag}';\n"
        f"\\! id > /tmp/whoami-{tag}\n"
    )
    sandbox = api.create(backup="evil.sql", probes="none")
    container = docker.from_env().containers.get(api.containers()[0].id)
    for name in ("shell", "out", "program"):
        assert not Path(f"/tmp/{name}-{tag}").exists(), f"{name} reached the host"
        assert container.exec_run(["test", "-e", f"/tmp/{name}-{tag}"]).exit_code == 0
    whoami = container.exec_run(["cat", f"/tmp/whoami-{tag}"]).output.decode()
    assert "uid=" in whoami
    assert "uid=0(" not in whoami  # unprivileged inside the sandbox too
    assert sandbox["status"] == "ready"


def test_passwords_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        sandbox = api.create()
    password = sandbox["connection_url"].split(":")[2].split("@")[0]
    assert len(password) >= 24
    for record in caplog.records:
        assert password not in record.getMessage()
        assert password not in repr(record.__dict__)


def test_several_tokens_are_accepted(make_api: Any) -> None:
    with make_api(api_tokens="team-a-token-0123456,team-b-token-0123456") as api:
        for token in ("test-token-0123456789", "team-a-token-0123456", "team-b-token-0123456"):
            response = api.client.get("/v1/sandboxes", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
        assert (
            api.client.get(
                "/v1/sandboxes", headers={"Authorization": "Bearer team-c-token-0123456"}
            ).status_code
            == 401
        )


def test_a_cluster_dump_cannot_demote_the_sandbox_superuser(api: Api, backups_dir: Path) -> None:
    (backups_dir / "cluster.sql").write_text(
        "--\n-- PostgreSQL database cluster dump\n--\n\n"
        "CREATE ROLE restorebox;\n"
        "ALTER ROLE restorebox WITH NOSUPERUSER NOINHERIT NOLOGIN PASSWORD 'stolen';\n"
        "CREATE ROLE app_owner;\nALTER ROLE app_owner WITH NOLOGIN;\n"
        "CREATE TABLE t (id int);\nALTER TABLE t OWNER TO app_owner;\n"
        "DROP ROLE IF EXISTS restorebox;\nCREATE TABLE after_error (id int);\n"
    )
    sandbox = api.create(backup="cluster.sql", probes="none")
    url = sandbox["connection_url"]
    assert query(
        url, "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = current_user"
    ) == [(True, True)]
    assert query(url, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'") == [
        ("app_owner",)
    ]
    assert query(url, "SELECT count(*) FROM pg_class WHERE relname = 'after_error'") == [(1,)]
    warnings = api.backup("cluster.sql")["warnings"]
    assert any("cluster dump" in w for w in warnings)


def test_what_a_dump_does_to_its_server_is_reported_and_undone(api: Api, backups_dir: Path) -> None:
    """ALTER SYSTEM and a rewritten pg_hba.conf would be kept in the snapshot that other
    principals copy: reported in the restore report and put back before it is taken."""
    (backups_dir / "reconfigures.sql").write_text(
        "CREATE TABLE t (id int);\n"
        "ALTER SYSTEM SET work_mem = '77MB';\n"
        "DO $$ BEGIN EXECUTE format('COPY (SELECT %L) TO %L', 'host all all all trust',"
        " current_setting('hba_file')); END $$;\n"
        "SELECT pg_reload_conf();\n"
    )
    sandbox = api.create(backup="reconfigures.sql", probes="none")
    warnings = " ".join(sandbox["restore"]["warnings"])
    assert "work_mem" in warnings
    assert "pg_hba.conf" in warnings
    url = sandbox["connection_url"]
    assert query(url, "SHOW work_mem") != [("77MB",)]
    assert query(url, "SHOW fsync") == [("on",)]  # the restore's own speed settings too
    trusted = "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type = 'host'"
    assert query(url, trusted) == [(0,)]


def test_a_sandbox_kept_after_a_failure_has_its_durability_back(
    api: Api, backups_dir: Path
) -> None:
    (backups_dir / "broken.sql").write_text("CREATE TABLE t (id int);\nSELECT nope;\n")
    failed = api.create(expect="failed", backup="broken.sql", keep_on_failure=True)
    settings = exec_in_sandbox(
        failed,
        "psql", "-X", "-At", "-U", "restorebox_bootstrap", "-d", "postgres",
        "-c", "SELECT current_setting('fsync') || current_setting('full_page_writes')",
    )  # fmt: skip
    assert settings.decode().strip() == "onon"
    api.delete(f"/v1/sandboxes/{failed['id']}")
