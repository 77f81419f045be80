"""Sandboxes open no connections out: checked on the engine's own host, not assumed.

Sandboxes sit on bridges named ``rbx<hex>`` (``anchors.NETWORK_OPTIONS``). Two firewall rules
on the engine's host keep whatever a restored dump makes the server do inside: everything
those bridges would forward is dropped (``DOCKER-USER``), and so is every new connection
from them to the host itself (``INPUT``). Published ports keep working: docker-proxy
connects from the host side, and its replies are not new connections.

The service may run beside the engine, in a container (compose), or far from it
(``DOCKER_HOST``): so the rules are read where they live, by a short-lived helper container
on the engine's host network that runs the host's own ``iptables`` (``chroot`` into the
host's root filesystem). Missing rules are added the same way when asked (``repair``), which
gives a compose deployment the protection ``scripts/ensure-docker`` gives a local one. No
connection is ever attempted to find out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import docker.errors

from restorebox.errors import RestoreboxError
from restorebox.runtime import labels as L
from restorebox.runtime.base import ContainerSpec
from restorebox.runtime.docker.engine import Engine

log = logging.getLogger("restorebox.runtime")

BRIDGES = "rbx+"
RULES = (
    ("DOCKER-USER", f"-i {BRIDGES} -j DROP"),
    ("INPUT", f"-i {BRIDGES} -m conntrack --ctstate NEW -j DROP"),
)
HELPER_LABEL = "restorebox.helper"
FIX = "on the engine's host: " + "; ".join(f"iptables -I {chain} {rule}" for chain, rule in RULES)


def _script(repair: bool) -> str:
    """A POSIX shell script for the host: exit 0 when every rule is in place (after adding
    the missing ones, with ``repair``); otherwise print what is missing and exit 3."""
    lines = [
        "command -v iptables >/dev/null 2>&1 || { echo 'no iptables on the host' >&2; exit 3; }"
    ]
    if repair:
        lines.append("iptables -w -N DOCKER-USER 2>/dev/null || true")
    for chain, rule in RULES:
        check = f"iptables -w -C {chain} {rule} 2>/dev/null"
        if repair:
            check += f" || iptables -w -I {chain} {rule} 2>/dev/null"
        lines.append(f'{check} || missing="$missing; {chain} {rule}"')
    lines.append('[ -z "$missing" ] || { echo "rules missing$missing" >&2; exit 3; }')
    return "\n".join(lines)


def check(engine: Engine, template: ContainerSpec, repair: bool) -> str | None:
    """None when the engine's host drops what sandboxes would send out; otherwise what is
    wrong and how to fix it. Raises EngineUnavailable when the engine does not answer."""
    labels = {**template.labels, L.MANAGED: "true", HELPER_LABEL: "egress"}
    labels.pop(L.SANDBOX, None)
    engine.ensure_image(template.image)
    _remove_finished_helpers(engine)
    try:
        output = engine.call(
            engine.client.containers.run,
            template.image,
            ["chroot", "/host", "/bin/sh", "-c", _script(repair)],
            entrypoint=[],
            user="root",
            network_mode="host",
            cap_add=["NET_ADMIN", "NET_RAW"],
            volumes={"/": {"bind": "/host", "mode": "rw"}},
            labels=labels,
            remove=True,
            stdout=True,
            stderr=True,
            retry=False,
        )
    except docker.errors.ContainerError as exc:
        raw = exc.stderr or b""
        said = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        return f"the engine's host does not isolate sandboxes ({said or exc}); {FIX}"
    except (docker.errors.APIError, RestoreboxError) as exc:
        if isinstance(exc, RestoreboxError) and exc.code == "engine_unavailable":
            raise
        return f"could not read the engine's host firewall ({exc}); {FIX}"
    log.debug("sandbox isolation verified", extra={"output": bytes(output or b"")[:200]})
    return None


def _remove_finished_helpers(engine: Engine, older_than: float = 60.0) -> None:
    """Helpers an earlier check left exited (its client gone before the removal that
    follows the run): stateless, whoever's they were. Only those that finished a minute
    ago or more: a check running now removes its own."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    try:
        finished = engine.call(
            engine.client.containers.list,
            all=True,
            filters={"label": f"{HELPER_LABEL}=egress", "status": "exited"},
        )
        for container in finished:
            ended = str(container.attrs.get("State", {}).get("FinishedAt", ""))[:19]
            if ended and datetime.fromisoformat(ended).replace(tzinfo=UTC) < cutoff:
                engine.call(container.remove, force=True)
    except (docker.errors.APIError, RestoreboxError, ValueError) as exc:
        log.debug("finished helpers not removed", extra={"error": str(exc)})
