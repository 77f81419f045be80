"""Schemathesis against the OpenAPI schema (bounded examples): no input makes a 5xx.
The engine is faked: this exercises validation, routing and the error mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from restorebox.api import create_app
from restorebox.settings import Settings
from tests.conftest import AUTH
from tests.fakes import FakeRuntime


def make_app(tmp: Path):  # type: ignore[no-untyped-def]
    (tmp / "backups").mkdir(parents=True, exist_ok=True)
    (tmp / "backups" / "a.sql").write_text("CREATE TABLE a (id int);\n")
    return create_app(
        Settings(
            state_dir=tmp / "state",
            backups_dir=tmp / "backups",
            api_token=AUTH["Authorization"].split()[1],
            ready_timeout_seconds=0.1,
            max_sandboxes=1000,
        ),
        FakeRuntime(),
        background=False,
    )


APP = make_app(Path(__import__("tempfile").mkdtemp(prefix="restorebox-fuzz-")))


async def app_without_lifespan(scope, receive, send):  # type: ignore[no-untyped-def]
    """The ASGI transport runs lifespan around every call; the service runs it once."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await APP(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", app_without_lifespan)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error])


@pytest.fixture(autouse=True, scope="module")
def _shutdown() -> object:
    yield None
    APP.state.services.manager.shutdown()
