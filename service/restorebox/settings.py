"""Service configuration, read once from the environment (prefix ``RESTOREBOX_``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_IMAGES = {
    15: "restorebox/postgres:15",
    17: "restorebox/postgres:17",
    18: "restorebox/postgres:18",
}


class Settings(BaseSettings):
    """Everything an operator can tune. Tests build one with keyword arguments."""

    model_config = SettingsConfigDict(env_prefix="RESTOREBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8420, ge=1, le=65535)
    state_dir: Path = Path(".restorebox")
    backups_dir: Path = Path("backups")

    # The admin's token (principal "admin"); generated into the state dir when no token
    # is configured at all.
    api_token: SecretStr | None = None
    # Further tokens, comma separated: "name=token" makes a principal of that name (it
    # sees only its own sandboxes); a bare token is another admin token (rotation).
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Principals that see every sandbox, comma separated.
    admins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["admin"])

    # PostgreSQL major version -> image. JSON in the environment:
    # RESTOREBOX_IMAGES='{"15": "restorebox/postgres:15", "17": "postgres:17"}'
    images: dict[int, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGES))
    default_postgres: int | None = None  # None: the newest configured major
    # A platform's own image per major, where an operator has one (their registry's copy
    # of the platform's PostgreSQL): its dumps restore into it, with no stand-ins.
    # RESTOREBOX_PROFILE_IMAGES='{"supabase": {"15": "registry.example/supabase/postgres:15"}}'
    profile_images: dict[str, dict[int, str]] = Field(default_factory=dict)

    # Webhooks: a JSON event per sandbox ready / failed / expired / deleted, POSTed here;
    # with a secret, signed (X-Restorebox-Signature: sha256=<HMAC of the body>).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_attempts: int = Field(6, ge=1, le=20)
    # /metrics answers without a token (for a Prometheus inside a trusted network).
    metrics_public: bool = False

    publish_host: str = "127.0.0.1"
    # Host name put in connection URLs; default: the publish host (127.0.0.1 when it is a
    # wildcard address, which clients cannot dial).
    url_host: str | None = None
    default_ttl_seconds: int = Field(3600, ge=10)
    max_ttl_seconds: int = Field(7 * 24 * 3600, ge=10)
    max_sandboxes: int = Field(20, ge=1)
    sandbox_memory_bytes: int = Field(2 * 1024**3, ge=64 * 1024**2)
    sandbox_cpus: float = Field(2.0, gt=0)
    sandbox_pids: int = Field(1024, ge=64)
    # What one sandbox may write to the engine's disk (its uploads, its database, its WAL),
    # so that one dump cannot fill the data root for everyone; 0: no bound.
    sandbox_disk_bytes: int = Field(20 * 1024**3, ge=0)
    # Start even when the engine's host does not verifiably keep sandboxes from opening
    # connections out (a development engine without the firewall rules).
    allow_egress: bool = False

    ready_timeout_seconds: float = Field(60.0, gt=0)
    restore_timeout_seconds: float = Field(3600.0, gt=0)
    probe_timeout_seconds: float = Field(300.0, gt=0)
    # pg_restore -j and parallel ANALYZE; None: one job per CPU the sandbox may use.
    restore_jobs: int | None = Field(None, ge=1, le=32)
    max_backup_bytes: int = Field(64 * 1024**3, ge=1)
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    keep_failed: bool = False
    # Restored sandboxes are kept as snapshots up to this many bytes (least recently used
    # go first); 0 turns the cache off. Named snapshots are not counted.
    snapshot_max_bytes: int = Field(50 * 1024**3, ge=0)
    # The store (restorebox.storage): sandbox data directories on a filesystem that clones
    # files, so snapshots and copies cost only what they change. A directory (default
    # <state>/store); its own filesystem is used when it clones files (XFS, btrfs),
    # otherwise a sparse XFS image of store_size_bytes is made and loop-mounted there
    # (grown when needed). "off": every sandbox's data in its container's layer.
    store: str = ""
    store_size_bytes: int = Field(32 * 1024**3, ge=1024**3)
    # Copies of the snapshot copied last kept started ahead (0: off): a create that would
    # copy it claims one at once, and many asked for at once do not queue for the CPU.
    # Each is an idle server (a few MB of memory); refilled once creates pause.
    hot_copies: int = Field(0, ge=0, le=50)
    reap_interval_seconds: float = Field(2.0, gt=0)
    # "wait": true holds a request at most this long; then the answer is the current state
    # (202). Waiting holds no worker thread.
    max_wait_seconds: float = Field(600.0, gt=0)
    workers: int = Field(4, ge=1, le=64)
    # Isolated networks made ahead, so that many sandboxes asked for at once do not queue
    # behind the engine's one-at-a-time network creation (0: make each on demand).
    network_pool: int = Field(10, ge=0, le=100)

    # Masked copies (issue 21): the HMAC key masked values are derived from. Empty: a
    # random key kept in the state directory (masking.key, mode 0600). Masked snapshots
    # are keyed by its fingerprint: a new key never hands out values masked by the old.
    masking_key: SecretStr = SecretStr("")
    # Threads one large table's masking is split over (by block ranges): the cores.
    masking_workers: int = Field(2, ge=1, le=16)

    # Backup drills (issue 19): the watcher drills each new backup of the backups folder
    # (RESTOREBOX_DRILLS=off: only on request), one at a time by default.
    drills: bool = True
    drill_poll_seconds: float = Field(10.0, gt=0)
    drill_settle_seconds: float = Field(5.0, ge=0)  # unchanged this long: fully written
    drill_workers: int = Field(1, ge=1, le=8)
    drill_retention: int = Field(200, ge=2)
    drill_ttl_seconds: int = Field(6 * 3600, ge=60)  # the longest a drill's restore may take

    @field_validator("api_tokens", "admins", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_token", "api_tokens")
    @classmethod
    def _tokens_long_enough(cls, value: object) -> object:
        from restorebox.auth.tokens import too_short  # tokens reads Settings: imported when used

        values = value if isinstance(value, list) else [value]
        for secret in values:
            if isinstance(secret, SecretStr) and (why := too_short(secret.get_secret_value())):
                raise ValueError(why)  # named with its setting by pydantic
        return value

    @field_validator("images")
    @classmethod
    def _images_not_empty(cls, value: dict[int, str]) -> dict[int, str]:
        if not value:
            raise ValueError("at least one PostgreSQL image must be configured")
        return value

    @cached_property
    def majors(self) -> list[int]:
        """Configured PostgreSQL majors, oldest first."""
        return sorted(self.images)

    @property
    def connect_host(self) -> str:
        """Where the service itself reaches sandbox ports."""
        return "127.0.0.1" if self.publish_host in ("0.0.0.0", "::", "") else self.publish_host

    def image_for(self, major: int, profile: str | None) -> tuple[str, bool]:
        """The image for a major (and platform profile); True when it is the platform's own."""
        own = self.profile_images.get(profile or "", {}).get(major)
        return (own, True) if own else (self.images[major], False)

    def default_major(self) -> int:
        return self.default_postgres if self.default_postgres is not None else self.majors[-1]

    @property
    def store_path(self) -> Path:
        return Path(self.store) if self.store else self.state_dir / "store"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "api-token"

    @property
    def database_file(self) -> Path:
        return self.state_dir / "state.sqlite3"

    @property
    def snapshot_file(self) -> Path:
        return self.state_dir / "snapshots.sqlite3"

    @property
    def backup_cache_file(self) -> Path:
        return self.state_dir / "backups.sqlite3"
