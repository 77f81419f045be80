"""The isolation check's helper containers: one an interrupted check left exited is
removed by the next check (they are stateless), never one a check is running now."""

from __future__ import annotations

import pytest

from restorebox.runtime.docker import DockerRuntime
from restorebox.runtime.docker.egress import HELPER_LABEL, _remove_finished_helpers

pytestmark = pytest.mark.integration


def test_finished_helpers_are_removed_and_recent_ones_kept(docker_runtime: DockerRuntime) -> None:
    engine = docker_runtime.engine
    client = engine.client
    container = client.containers.run(
        "restorebox/postgres:17",
        ["true"],
        entrypoint=[],
        labels={HELPER_LABEL: "egress", "restorebox.test": "egress-helper"},
        detach=True,
    )
    try:
        container.wait(timeout=60)
        _remove_finished_helpers(engine)  # finished a moment ago: a running check's own
        container.reload()
        _remove_finished_helpers(engine, older_than=0)
        left = client.containers.list(all=True, filters={"label": "restorebox.test=egress-helper"})
        assert left == []
    finally:
        for stray in client.containers.list(
            all=True, filters={"label": "restorebox.test=egress-helper"}
        ):
            stray.remove(force=True)
