"""The container runtime seam: a small protocol, implemented for Docker in ``docker.py``."""

from restorebox.runtime.base import (
    Container,
    ContainerSpec,
    DataDirRuntime,
    Endpoint,
    ExecResult,
    Runtime,
    SnapshotImage,
    StorageUsage,
    UploadFile,
)

__all__ = [
    "Container",
    "ContainerSpec",
    "DataDirRuntime",
    "Endpoint",
    "ExecResult",
    "Runtime",
    "SnapshotImage",
    "StorageUsage",
    "UploadFile",
]
