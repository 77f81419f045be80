"""The registry of probes, by name."""

from __future__ import annotations

PROBES: dict[str, object] = {}
