"""Domain errors. Each carries a stable machine-readable ``code``; the API maps
classes to HTTP statuses in one table (``api/errors.py``), so nothing here knows HTTP."""

from __future__ import annotations

from typing import Any


class RestoreboxError(Exception):
    """Base class: something the caller or operator should be told about plainly."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(RestoreboxError):
    """Raised when a request is well-formed JSON but asks for something impossible."""

    code = "invalid_request"


class MaskingPolicyInvalid(InvalidRequest):
    """Raised when a masking policy names tables, columns or strategies it cannot have."""

    code = "masking_policy_invalid"


class SandboxNotFound(RestoreboxError):
    """Raised when no sandbox has the given id."""

    code = "sandbox_not_found"


class SandboxConflict(RestoreboxError):
    """Raised when a sandbox is in a state that forbids the operation (e.g. already deleted)."""

    code = "sandbox_conflict"


class TooManySandboxes(RestoreboxError):
    """Raised when creating one more sandbox would pass ``max_sandboxes``."""

    code = "too_many_sandboxes"

    @classmethod
    def at(cls, limit: int) -> TooManySandboxes:
        """The error for a create (or a hot copy's claim) refused at ``limit``."""
        return cls(
            f"{limit} sandboxes exist already (the maximum; failed sandboxes whose container "
            "is kept count too); delete one or wait for one to expire"
        )


class Forbidden(RestoreboxError):
    """Raised when the principal may not do this (only admins may)."""

    code = "forbidden"


class SeriesNotFound(RestoreboxError):
    """Raised when no backup of the backups folder belongs to the named series."""

    code = "series_not_found"


class DrillNotFound(RestoreboxError):
    """Raised when no drill has the given id."""

    code = "drill_not_found"


class SnapshotNotFound(RestoreboxError):
    """Raised when no snapshot has the given id or name."""

    code = "snapshot_not_found"


class SnapshotInUse(RestoreboxError):
    """Raised when a snapshot cannot be removed because live sandboxes use it."""

    code = "snapshot_in_use"


class SnapshotFailed(RestoreboxError):
    """Raised when a snapshot could not be taken (the sandbox itself is left as it was)."""

    code = "snapshot_failed"


class BackupNotFound(RestoreboxError):
    """Raised when a backup name does not exist in the backups folder."""

    code = "backup_not_found"


class InvalidBackupName(RestoreboxError):
    """Raised when a backup name would escape the backups folder."""

    code = "invalid_backup_name"


class UnsupportedBackup(RestoreboxError):
    """Raised when a file is not a pg_dump backup restorebox can read (empty, random bytes)."""

    code = "unsupported_backup"


class ExtensionUnavailable(RestoreboxError):
    """Raised before any container starts when a backup creates an extension the chosen
    image does not have and no platform profile accounts for (TimescaleDB, Citus, ...)."""

    code = "extension_unavailable"


class BackupTooLarge(RestoreboxError):
    """Raised when a backup is larger than ``max_backup_bytes``."""

    code = "backup_too_large"


class NoSuitablePostgres(RestoreboxError):
    """Raised when no configured PostgreSQL major is new enough for a backup."""

    code = "no_suitable_postgres"


class EngineUnavailable(RestoreboxError):
    """Raised when the container engine does not answer."""

    code = "engine_unavailable"


class StateUnavailable(RestoreboxError):
    """Raised when the state directory cannot be read or written (permissions, disk full)."""

    code = "state_unavailable"


class IsolationUnverified(RestoreboxError):
    """Raised at start when sandboxes could open connections out and nobody said that is
    acceptable (``RESTOREBOX_ALLOW_EGRESS``)."""

    code = "isolation_unverified"


class SandboxFailed(RestoreboxError):
    """Raised inside provisioning; recorded on the sandbox as its ``error``."""

    code = "sandbox_failed"


class SandboxStartTimeout(SandboxFailed):
    """Raised when PostgreSQL in a new container does not accept a login in time."""

    code = "start_timeout"


class ImageUnavailable(SandboxFailed):
    """Raised when the configured image is neither present nor pullable."""

    code = "image_unavailable"


class ContainerVanished(SandboxFailed):
    """Raised when a sandbox's container disappears or dies underneath it."""

    code = "container_vanished"


class RestoreFailed(SandboxFailed):
    """Raised when a restore step fails and ``on_error`` is ``stop``."""

    code = "restore_failed"


class RestoreTimeout(SandboxFailed):
    """Raised when a restore runs past ``restore_timeout_seconds``."""

    code = "restore_timeout"


class DiskLimitExceeded(SandboxFailed):
    """Raised when a sandbox wrote more than ``sandbox_disk_bytes`` to the engine's disk."""

    code = "disk_limit"

    @classmethod
    def at(cls, used: int, limit: int, doing: str) -> DiskLimitExceeded:
        return cls(
            f"the sandbox wrote {used / 1024**2:.0f} MB to disk {doing}, over its bound of "
            f"{limit / 1024**2:.0f} MB (RESTOREBOX_SANDBOX_DISK_BYTES); raise the bound for "
            "this backup, or restore a smaller one",
            used_bytes=used,
            limit_bytes=limit,
        )


class Interrupted(SandboxFailed):
    """Recorded when a sandbox was being made by a service that stopped (crash, kill -9)."""

    code = "interrupted"


class Cancelled(SandboxFailed):
    """Raised when provisioning is stopped by a delete or by service shutdown."""

    code = "cancelled"


class HotCopyFailed(SandboxFailed):
    """Raised (inside the service, never to a caller) when a copy made ahead failed."""

    code = "hot_copy_failed"


class MaskingFailed(SandboxFailed):
    """Raised when masking a restored sandbox fails: it is never handed out unmasked."""

    code = "masking_failed"


class MaskingIncomplete(SandboxFailed):
    """Raised under a strict policy when columns that look personal are not covered."""

    code = "masking_incomplete"
