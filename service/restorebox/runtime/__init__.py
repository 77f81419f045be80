"""The container runtime seam: a small protocol, implemented for Docker in ``docker.py``."""

from restorebox.runtime.base import (
    Container,
    ContainerSpec,
    Endpoint,
    ExecResult,
    Runtime,
    SnapshotImage,
    UploadFile,
)

__all__ = [
    "Container",
    "ContainerSpec",
    "Endpoint",
    "ExecResult",
    "Runtime",
    "SnapshotImage",
    "UploadFile",
]
