"""`restorebox survey DIR`: the real command on a folder of backups, through a service of
its own; every outcome kind, and nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from restorebox.runtime import labels
from tests.conftest import CLI, THIRD_PARTY

pytestmark = pytest.mark.integration

MISSING_SCHEMA = """--
-- PostgreSQL database dump
--
-- Dumped from database version 17.2
-- Dumped by pg_dump version 17.2

COPY public.nowhere (id) FROM stdin;
1
\\.
"""


def test_a_survey_judges_every_backup_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copyfile(THIRD_PARTY / "northwind" / "northwind.sql", folder / "northwind.sql")
    (folder / "notes.txt").write_text("not a backup at all\n")
    (folder / "orphan-data.sql").write_text(MISSING_SCHEMA)
    before = {c.id for c in docker.from_env().containers.list(all=True)}
    out = tmp_path / "survey.json"
    env = {**os.environ, "RESTOREBOX_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [CLI, "survey", str(folder), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = {r["backup"]: r for r in json.loads(out.read_text())}
    assert results["northwind.sql"]["outcome"] == "pass"
    assert results["northwind.sql"]["probes"]["row_parity"] == "pass"
    assert results["notes.txt"]["outcome"] == "refused"
    assert results["notes.txt"]["code"] == "unsupported_backup"
    assert results["orphan-data.sql"]["outcome"] == "failed"
    assert "nowhere" in results["orphan-data.sql"]["why"]
    # The table on stdout says the same.
    assert "3 backups: 1 pass, 0 warn, 0 fail, 1 failed, 1 refused" in done.stdout
    # Its own service is gone and left no sandbox behind.
    after = docker.from_env().containers.list(all=True, filters={"label": labels.MANAGED})
    assert not [c for c in after if c.id not in before]
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
