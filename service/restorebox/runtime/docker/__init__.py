"""The Docker runtime: ``DockerRuntime`` and the concerns it is made of."""

from restorebox.runtime.docker.runtime import DockerRuntime

__all__ = ["DockerRuntime"]
