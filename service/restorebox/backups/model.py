"""What restorebox knows about one backup after reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Format = Literal["plain", "custom", "directory", "tar"]
Compression = Literal["none", "gzip", "zstd", "lz4"]
Content = Literal["schema", "data", "complete", "unknown"]


class DeclaredObject(BaseModel):
    """An object the backup creates, named the way pg_dump's TOC names kinds."""

    kind: str  # TABLE, VIEW, MATERIALIZED VIEW, FUNCTION, INDEX, TRIGGER, POLICY, ...
    namespace: str
    name: str
    table: str | None = None


class AnonLabel(BaseModel):
    """One column's PostgreSQL Anonymizer rule, as the dump declares it (see columns)."""

    table: str  # schema.table
    column: str
    label: str  # "MASKED WITH FUNCTION anon.fake_email()"


class DatabaseContent(BaseModel):
    """What one database of a multi-database file (pg_dumpall, pg_dump --create) holds."""

    objects: list[DeclaredObject] = Field(default_factory=list)
    row_counts: dict[str, int] = Field(default_factory=dict)


class Backup(BaseModel):
    name: str
    format: Format
    compression: Compression
    content: Content
    size_bytes: int
    sha256: str
    source_server_version: str | None = None
    pg_dump_version: str | None = None
    archive_version: str | None = None  # "1.16" for custom, directory and tar archives
    cluster_dump: bool = False
    wrapper: Literal["tar", "tar.gz", "zip"] | None = None  # a dump inside an archive
    # The dump carries server-internal column options no server accepts (see translate).
    internal_options: bool = False
    # Plain files that create and connect to databases: every database, the main one
    # (the one a sandbox hands out), what each holds, and the locales they ask for.
    databases: list[str] = Field(default_factory=list)
    main_database: str | None = None
    per_database: dict[str, DatabaseContent] = Field(default_factory=dict)
    locales: list[str] = Field(default_factory=list)
    # Databases the file \connects to and never creates (scripts of a set, one per
    # database): the restore makes them, empty, first.
    connects_without_create: list[str] = Field(default_factory=list)
    clean: bool = False  # a --clean dump: DROP statements before each CREATE
    security_labels: bool = False  # SECURITY LABEL statements (no provider in a sandbox)
    # A plain file written by pg_dump (or pg_dumpall) that ends with its "dump complete"
    # trailer; False when the file was cut short; None when that cannot be told.
    ends_complete: bool | None = None
    tool_messages: int = 0  # lines of pg_dump's own messages at the top, skipped on restore
    encoding: str | None = None  # the dump's own (SET client_encoding / archive header)
    # Objects whose owner must be a superuser or hold a privilege a stand-in role lacks
    # ("EVENT TRIGGER name"): their OWNER TO falls back to the restoring user, reported.
    superuser_owned: list[str] = Field(default_factory=list)
    # Where the dump's own setval leaves each sequence ("schema.name" -> (value, called)):
    # a sequence behind its data is then judged against the source, not the restore.
    sequence_values: dict[str, tuple[int, bool]] = Field(default_factory=dict)
    # What the dump's statements use that a major brought ("uuidv7()": 18), whatever its
    # header says: the version rule takes it into account.
    needs: list[str] = Field(default_factory=list)
    needs_major: int | None = None
    # Platform schemas the dump's statements use without creating (see platforms/).
    mentions: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    creates_roles: list[str] = Field(default_factory=list)  # CREATE ROLE in a plain file
    # Internal (the API's BackupOut names what is public); kept in the description cache.
    objects: list[DeclaredObject] = Field(default_factory=list)
    data_tables: list[str] = Field(default_factory=list)
    # Columns per table ("schema.table"), from table definitions and COPY column lists,
    # and PostgreSQL Anonymizer's rules: what a masking policy is checked against.
    columns: dict[str, list[str]] = Field(default_factory=dict)
    anon_labels: list[AnonLabel] = Field(default_factory=list)
    # Rows per table the backup carries, when known without a PostgreSQL client
    # (plain files; archives are counted inside the sandbox by the restore).
    row_counts: dict[str, int] | None = None
    path: Path


def major_of(version: str | None) -> int | None:
    """'15.4' -> 15, '15beta2' -> 15, '9.6.24' -> 9 (anything below 10 needs no more than 10)."""
    if not version:
        return None
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else None
