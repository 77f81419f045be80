"""Named retry policies (tenacity), tuned in one place and logged at each attempt."""

from __future__ import annotations

import logging

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_chain,
    wait_exponential,
    wait_fixed,
)

log = logging.getLogger("restorebox.retry")


READINESS_FAST_POLL_SECONDS = 0.05
READINESS_FAST_POLLS = 80  # ~4 s of fast polling covers a normal start
READINESS_SLOW_POLL_SECONDS = 0.5


def readiness(timeout_seconds: float, retry_on: tuple[type[BaseException], ...]) -> Retrying:
    """Poll a starting PostgreSQL every 50 ms for the first seconds (a sandbox is usually
    up in half a second, and exponential backoff would overshoot that), then every 0.5 s."""
    fast = [wait_fixed(READINESS_FAST_POLL_SECONDS)] * READINESS_FAST_POLLS
    return Retrying(
        stop=stop_after_delay(timeout_seconds),
        wait=wait_chain(*fast, wait_fixed(READINESS_SLOW_POLL_SECONDS)),
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
