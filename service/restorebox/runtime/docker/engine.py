"""The connection to a Docker engine (``DOCKER_HOST`` or the local socket): one client,
every call mapped to restorebox's errors and retried where that is safe, and the few
container operations every other part needs (kill, remove, images at hand)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import docker
import docker.errors
import requests

from restorebox.errors import EngineUnavailable, ImageUnavailable
from restorebox.retry import engine_call
from restorebox.runtime.docker.anchors import remove_container

log = logging.getLogger("restorebox.runtime")

TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


class Engine:
    """One engine's client, made on first use; ``call`` is how everything talks to it."""

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self.base_url = base_url
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()
        self.last_start = 0.0  # when a start began (background work waits for quiet)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    if self.base_url:
                        self._client = docker.DockerClient(
                            base_url=self.base_url, timeout=self._timeout
                        )
                    else:
                        self._client = docker.from_env(timeout=self._timeout)
                except docker.errors.DockerException as exc:
                    raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc
            return self._client

    def get_client(self) -> Any:
        return self.client

    def call(self, fn: Any, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        """Call the engine and map its failures. ``retry`` (reads, idempotent writes,
        creates guarded by a name check) retries transient connection errors; a call that
        must not happen twice (starting an exec, streaming a one-shot upload) is made once."""
        try:
            if not retry:
                return fn(*args, **kwargs)
            for attempt in engine_call(TRANSIENT):
                with attempt:
                    return fn(*args, **kwargs)
        except TRANSIENT as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            if exc.status_code is None or exc.status_code >= 500:
                raise EngineUnavailable(
                    f"the Docker engine failed: {exc.explanation or exc}"
                ) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        # No retries: a health check must answer quickly, also during an outage.
        try:
            self.client.ping()
        except (docker.errors.DockerException, *TRANSIENT) as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc

    def ensure_image(self, image: str) -> None:
        try:
            self.call(self.client.api.inspect_image, image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self.call(self.client.images.pull, image)
        except (docker.errors.NotFound, docker.errors.APIError) as exc:
            raise ImageUnavailable(
                f"image {image} is not available and could not be pulled; build it with "
                f"scripts/build-images or set RESTOREBOX_IMAGES: {exc}"
            ) from exc

    def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Killed at once (its data is thrown away). SIGKILL is waited for (the engine
        answers once the container has exited); other signals are only sent."""
        api = self.client.api
        try:
            self.call(api.kill, container_id, signal=signal)
            if signal == "SIGKILL":
                self.call(api.wait, container_id, timeout=30)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: not running
                raise

    def quit(self, container_id: str) -> None:
        """SIGQUIT, passed on to the server by the image's entrypoint: an immediate stop."""
        try:
            self.kill(container_id, "SIGQUIT")
        except Exception:  # the new server waits for the port, then the reset fails clearly
            log.warning("could not stop a reset's old container", exc_info=True)

    def remove_quietly(self, container_id: str) -> None:
        try:
            remove_container(self.call, self.client.api, container_id)
        except Exception:  # left over: removed or pruned with its sandbox
            log.warning("could not remove a container", exc_info=True)

    def wait_for_quiet(self, seconds: float) -> None:
        """Until no start has begun for ``seconds``: background work waits for bursts."""
        while time.monotonic() - self.last_start < seconds:
            time.sleep(0.2)
