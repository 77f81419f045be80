"""Integrity probes run against a freshly restored sandbox."""

from restorebox.probes.runner import run_probes

__all__ = ["run_probes"]
