"""restorebox: disposable PostgreSQL sandboxes restored from real pg_dump backups."""

__version__ = "0.1.0"
