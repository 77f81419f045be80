"""Backups: finding them safely, recognising their format, reading what they declare."""

from restorebox.backups.catalog import Catalog
from restorebox.backups.model import Backup, DeclaredObject

__all__ = ["Backup", "Catalog", "DeclaredObject"]
