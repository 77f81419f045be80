"""Named retry policies (tenacity), tuned in one place and logged at each attempt."""

from __future__ import annotations

import logging

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

log = logging.getLogger("restorebox.retry")


def readiness(timeout_seconds: float, retry_on: tuple[type[BaseException], ...]) -> Retrying:
    """Poll a starting PostgreSQL quickly at first, then back off to 0.5 s."""
    return Retrying(
        stop=stop_after_delay(timeout_seconds),
        wait=wait_exponential(multiplier=0.02, min=0.02, max=0.5),
        retry=retry_if_exception_type(retry_on),
        reraise=True,
    )


def engine_call(retry_on: tuple[type[BaseException], ...]) -> Retrying:
    """Transient engine errors (daemon restarting, API timeouts): a few tries over ~10 s."""
    return Retrying(
        stop=stop_after_delay(10),
        wait=wait_exponential(multiplier=0.2, max=2),
        retry=retry_if_exception_type(retry_on),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
