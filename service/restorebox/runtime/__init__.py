"""The container runtime seam: a small protocol, implemented for Docker in ``docker.py``."""

from .base import Container, ContainerSpec, ExecResult, Network, Runtime, UploadFile

__all__ = ["Container", "ContainerSpec", "ExecResult", "Network", "Runtime", "UploadFile"]
