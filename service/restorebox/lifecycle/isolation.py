"""Before the service takes its first request: are sandboxes kept from opening connections
out? Verified through the runtime, never assumed; without it the service does not start,
unless ``RESTOREBOX_ALLOW_EGRESS`` says that is acceptable. The service never changes the
host's firewall itself: ``restorebox isolate`` (run by ``scripts/ensure-docker``'s
equivalent for remote engines, and by compose's one-shot ``isolate`` service) does."""

from __future__ import annotations

import logging

from restorebox.errors import IsolationUnverified
from restorebox.runtime import ContainerSpec, Runtime
from restorebox.settings import Settings

log = logging.getLogger("restorebox.lifecycle.isolation")

VERIFIED = "verified"
ALLOWED = "not verified (RESTOREBOX_ALLOW_EGRESS=true)"


def verify(settings: Settings, runtime: Runtime, template: ContainerSpec) -> str:
    """``VERIFIED``, or ``ALLOWED`` when it is not and the operator allowed that; raises
    IsolationUnverified otherwise (the message names the fix)."""
    problem = runtime.check_isolation(template, repair=False)
    if problem is None:
        log.info("sandbox isolation verified: sandboxes cannot open connections out")
        return VERIFIED
    if settings.allow_egress:
        log.warning(
            "sandboxes may open connections out (allowed by RESTOREBOX_ALLOW_EGRESS)",
            extra={"problem": problem},
        )
        return ALLOWED
    raise IsolationUnverified(
        f"sandboxes could open connections out: {problem}. A restored dump runs as a "
        "superuser and must not reach your network: run `restorebox isolate` (it adds the "
        "rules through the engine), or to start anyway (a development engine, dumps you "
        "trust) set RESTOREBOX_ALLOW_EGRESS=true."
    )


def isolate(settings: Settings, runtime: Runtime, template: ContainerSpec) -> str | None:
    """Put the isolation in place through the runtime (``restorebox isolate``); None when
    it is verified afterwards, otherwise what is still wrong."""
    runtime.check_isolation(template, repair=True)
    return runtime.check_isolation(template, repair=False)
