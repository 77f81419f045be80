"""Isolation is checked, not assumed: without the engine host's firewall rules that keep
sandboxes from opening connections out, the service does not start (unless
RESTOREBOX_ALLOW_EGRESS says so), and `restorebox isolate` puts them in place.

The rules are the host's: this test takes them away for a moment and always puts them
back. Nothing here sends a packet anywhere; the rules are read."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from restorebox.errors import IsolationUnverified
from restorebox.runtime.docker.egress import RULES
from tests.conftest import CLI, free_port

pytestmark = pytest.mark.integration


def rule_present(chain: str, rule: str) -> bool:
    check = ["iptables", "-w", "-C", chain, *rule.split()]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


@contextmanager
def rules_removed() -> Iterator[None]:
    for chain, rule in RULES:
        while rule_present(chain, rule):
            subprocess.run(["iptables", "-w", "-D", chain, *rule.split()], check=True)
    try:
        yield
    finally:
        for chain, rule in RULES:
            if not rule_present(chain, rule):
                subprocess.run(["iptables", "-w", "-I", chain, *rule.split()], check=True)


def test_the_service_starts_only_when_sandboxes_cannot_reach_out(
    make_api: Any, tmp_path: Path
) -> None:
    with make_api() as api:  # the rules scripts/ensure-docker installed: verified
        assert api.get("/healthz").json()["isolation"] == "verified"

    env = {
        **os.environ,
        "RESTOREBOX_STATE_DIR": str(tmp_path / "cli-state"),
        "RESTOREBOX_BACKUPS_DIR": str(tmp_path),
        "RESTOREBOX_PORT": str(free_port()),
    }
    with rules_removed():
        with pytest.raises(IsolationUnverified) as refused, make_api():
            pass
        message = refused.value.message
        assert "RESTOREBOX_ALLOW_EGRESS" in message
        assert "restorebox isolate" in message
        assert "iptables -I DOCKER-USER -i rbx+ -j DROP" in message  # the fix, spelled out
        # `restorebox serve` says it plainly and exits; it never listens.
        served = subprocess.run(
            [CLI, "serve"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert served.returncode == 1
        assert "isolation_unverified" in served.stderr
        assert "Traceback" not in served.stderr
        # Allowed by the operator: it starts, and says what it could not verify.
        with make_api(allow_egress=True) as api:
            assert api.get("/healthz").json()["isolation"].startswith("not verified")
        # `restorebox isolate` puts the rules in place through the engine.
        isolated = subprocess.run(
            [CLI, "isolate"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert isolated.returncode == 0, isolated.stderr
        assert all(rule_present(chain, rule) for chain, rule in RULES)
        with make_api() as api:
            assert api.get("/healthz").json()["isolation"] == "verified"
