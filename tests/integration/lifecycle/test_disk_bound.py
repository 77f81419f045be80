"""The disk bound (RESTOREBOX_SANDBOX_DISK_BYTES): one dump, or one user of a ready sandbox,
cannot fill the engine's data root for everyone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, execute
from tests.integration.lifecycle.test_faults import containers_of

pytestmark = pytest.mark.integration

BOUND = 200 * 1024**2
# About 600 MB once restored: three times the bound.
BIG = (
    "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 32) AS body"
    " FROM generate_series(1, 550000) AS g;\n"
)


@pytest.fixture
def api(make_api: Any) -> Any:
    with make_api(sandbox_disk_bytes=BOUND) as api:
        yield api


def test_a_restore_past_the_disk_bound_fails_clearly_and_leaves_nothing(
    api: Api, backups_dir: Path
) -> None:
    (backups_dir / "big.sql").write_text(BIG)
    sandbox = api.create(expect="failed", backup="big.sql", probes="none", keep_on_failure=True)
    assert sandbox["error"]["code"] == "disk_limit"
    assert "RESTOREBOX_SANDBOX_DISK_BYTES" in sandbox["error"]["message"]
    assert containers_of(sandbox["id"]) == []  # never kept: it would hold the disk


def test_a_ready_sandbox_past_the_disk_bound_is_stopped_and_reported(api: Api) -> None:
    sandbox = api.create()
    execute(sandbox["connection_url"], BIG)
    outcome = api.services.manager.reconcile()
    assert sandbox["id"] in outcome["failed"]
    current = api.get(f"/v1/sandboxes/{sandbox['id']}").json()
    assert current["status"] == "failed"
    assert current["error"]["code"] == "disk_limit"
    assert containers_of(sandbox["id"]) == []
    metrics = api.get("/metrics").text
    assert 'restorebox_sandbox_failures_total{reason="disk_limit"} 1.0' in metrics
