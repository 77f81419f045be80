from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restorebox.api import create_app
from restorebox.errors import StateUnavailable
from restorebox.lifecycle.store import Store
from restorebox.settings import Settings
from tests.conftest import AUTH, TOKEN
from tests.fakes import FakeRuntime


def test_state_file_is_private(tmp_path: Path) -> None:
    Store(tmp_path / "state" / "db.sqlite3")
    assert (tmp_path / "state" / "db.sqlite3").stat().st_mode & 0o777 == 0o600


def test_state_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("x")
    with pytest.raises(StateUnavailable, match="state"):
        create_app(Settings(state_dir=tmp_path / "state", api_token=TOKEN), FakeRuntime())


def test_state_failure_while_serving_is_503_not_500(tmp_path: Path) -> None:
    app = create_app(
        Settings(state_dir=tmp_path, backups_dir=tmp_path, api_token=TOKEN),
        FakeRuntime(),
        background=False,
    )
    client = TestClient(app, raise_server_exceptions=False)
    app.state.services.manager.store.close()  # the database goes away underneath
    response = client.get("/v1/sandboxes", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["code"] == "state_unavailable"


def test_generated_token_is_kept_private_and_stable(tmp_path: Path) -> None:
    from restorebox.auth.tokens import load_or_create, read_for_client

    settings = Settings(state_dir=tmp_path)
    [token] = load_or_create(settings)
    assert settings.token_file.stat().st_mode & 0o777 == 0o600
    assert list(load_or_create(settings)) == [token]
    assert read_for_client(settings) == token
