"""Backups: finding them safely, recognising their format, reading what they declare."""

from .catalog import Catalog
from .model import Backup, DeclaredObject

__all__ = ["Backup", "Catalog", "DeclaredObject"]
