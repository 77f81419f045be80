"""What a restore leaves of its server's configuration.

A dump runs as a superuser: it can `ALTER SYSTEM`, and write the configuration files with
`COPY ... TO 'pg_hba.conf'`. Whatever it changed would be kept in the snapshot that other
principals copy, and the restore's own speed settings (``fsync`` off...) would stay on a
sandbox kept after a failure. ``ServerConfig`` reads the configuration before the restore
and puts it back afterwards, on every exit path, reporting what the dump had changed."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg

from restorebox.runtime import Runtime

log = logging.getLogger("restorebox.restore")

# Files a dump could rewrite through the server, by the settings naming them.
WATCHED_FILES = ("hba_file", "ident_file", "config_file")


@dataclass(frozen=True)
class ServerConfig:
    """The configuration files (absolute path -> content) as they were before the restore."""

    files: dict[str, str]

    @classmethod
    def read(cls, conn: psycopg.Connection[Any]) -> ServerConfig:
        files = {}
        for setting in WATCHED_FILES:
            row = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()
            content = _read(conn, str(row[0])) if row is not None else None
            if row is not None and content is not None:
                files[str(row[0])] = content
        return cls(files)

    def put_back(
        self,
        conn: psycopg.Connection[Any],
        runtime: Runtime,
        container_id: str,
        own_settings: Collection[str],
    ) -> list[str]:
        """Reset every `ALTER SYSTEM` (the restore's ``own_settings`` silently, the dump's
        with a warning each) and rewrite any watched file the restore changed; then reload.
        Returns the warnings for the restore report."""
        warnings = []
        rows = conn.execute(
            "SELECT name, setting FROM pg_file_settings"
            " WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno"
        ).fetchall()
        for name, setting in rows:
            if name not in own_settings:
                warnings.append(
                    f"the dump changed a server setting with ALTER SYSTEM: {name} = {setting!r}"
                    " (reset after the restore: not in the sandbox, its snapshot or copies)"
                )
        conn.execute("ALTER SYSTEM RESET ALL")
        for path, before in self.files.items():
            if _read(conn, path) == before:
                continue
            name = path.rsplit("/", 1)[-1]
            warnings.append(
                f"the dump rewrote {name} (put back as it was after the restore: not in the "
                "sandbox, its snapshot or copies)"
            )
            result = runtime.exec(
                container_id,
                ["sh", "-c", 'cat > "$1"', "sh", path],
                stdin=[before.encode()],
            )
            if result.exit_code != 0:
                raise OSError(f"could not put {name} back: {result.stderr.decode()[:300]}")
        conn.execute("SELECT pg_reload_conf()")
        if warnings:
            log.warning("the dump changed the server's configuration", extra={"changes": warnings})
        return warnings


def _read(conn: psycopg.Connection[Any], path: str) -> str | None:
    """A file's text, None when it is missing. pg_read_file(path, offset, length,
    missing_ok) is the form every major has (the two-argument one is newer); configuration
    files are far smaller than the length asked for."""
    row = conn.execute("SELECT pg_read_file(%s, 0, 16777216, true)", (path,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])
