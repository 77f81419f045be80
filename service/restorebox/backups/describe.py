"""Say what a backup is, from its content: format, compression, versions, what it
declares, which tables carry data. Also inside tar, tar.gz and zip wrappers."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

import zstandard

from restorebox.backups.archive import ArchiveToc, read_archive_toc, read_toc
from restorebox.backups.archive_rows import (
    READ_SIZE,
    copy_tables,
    count_custom_rows,
    count_directory_file,
    data_file_table,
)
from restorebox.backups.columns import scan_toc
from restorebox.backups.declared import archive_declarations, split_qname
from restorebox.backups.model import Backup, Compression, Content, DatabaseContent, Format
from restorebox.backups.plain import (
    SETVAL,
    SUPERUSER_OWNED_KINDS,
    WATCHED,
    PlainScan,
    scan_plain,
)
from restorebox.backups.sniff import (
    ARCHIVE_MAGIC,
    HashingReader,
    compression_of,
    decompressing,
    looks_like_sql,
    sniff,
)
from restorebox.backups.wrapped import Wrapped, open_wrapped, wrapper_of
from restorebox.errors import UnsupportedBackup

_READ_ERRORS = (OSError, EOFError, RuntimeError, zstandard.ZstdError)


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def _sha256(path: Path) -> tuple[str, int]:
    sha, size, _ = _hash_directory(path, {}) if path.is_dir() else _hash_file(path)
    return sha, size


def _hash_file(path: Path) -> tuple[str, int, None]:
    with path.open("rb") as handle:
        hashing = HashingReader(handle)
        return (*hashing.finish(), None)


def _hash_directory(path: Path, tables: dict[int, str]) -> tuple[str, int, dict[str, int] | None]:
    """One pass over a directory archive's files: the checksum (names and contents) and,
    for its COPY data files, the rows per table (None if any data file was unreadable)."""
    digest = hashlib.sha256()
    size = 0
    counts: dict[str, int] | None = {}
    for file in _files_of(path):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        table = data_file_table(file, tables) if file.parent == path else None
        with file.open("rb") as handle:
            hashing = HashingReader(handle, digest)
            if table is not None and counts is not None:
                rows = count_directory_file(file, cast(IO[bytes], hashing))
                if rows is None:
                    counts = None
                else:
                    counts[table] = counts.get(table, 0) + rows
            size += hashing.finish()[1]
    return digest.hexdigest(), size, counts


def _describe_archive(name: str, path: Path, fmt: Format) -> Backup:
    """Hash, read the table of contents and count the COPY rows in one pass."""
    counts: dict[str, int] | None = None
    if fmt == "directory":
        toc = read_archive_toc(path, fmt)
        _refuse_missing_data_files(name, path, _data_entries(toc))
        sha, size, counts = _hash_directory(path, copy_tables(toc))
    elif fmt == "custom":
        with path.open("rb") as handle:
            hashing = HashingReader(handle)
            buffered = io.BufferedReader(hashing, buffer_size=READ_SIZE)
            toc = read_toc(buffered, name)
            counts = count_custom_rows(buffered, toc, name)
            sha, size = hashing.finish()
    else:
        sha, size = _sha256(path)
        toc = read_archive_toc(path, fmt)
    backup = _from_toc(name, path, fmt, toc, sha, size)
    backup.row_counts = counts
    return backup


def _data_entries(toc: ArchiveToc) -> dict[int, str]:
    """dump id -> "schema.table" of every TABLE DATA entry: each has a file of its own."""
    return {
        e.dump_id: f"{e.namespace or 'public'}.{e.tag}"
        for e in toc.entries
        if e.desc == "TABLE DATA"
    }


def _refuse_missing_data_files(name: str, path: Path, tables: dict[int, str]) -> None:
    """A directory dump whose table of contents names data files the folder lacks (a copy
    cut short, files too large for where it was kept) cannot restore those tables."""
    present = {f.name.split(".", 1)[0] for f in path.iterdir() if ".dat" in f.name}
    missing = {i: t for i, t in sorted(tables.items()) if str(i) not in present}
    if missing:
        named = ", ".join(f"{i}.dat ({t})" for i, t in list(missing.items())[:5])
        raise UnsupportedBackup(
            f"{name}: an incomplete directory-format dump: {len(missing)} of {len(tables)} "
            f"data files are missing ({named}); copy the whole folder again"
        )


def _content(has_schema: bool, has_data: bool) -> Content:
    if has_schema and has_data:
        return "complete"
    if has_schema:
        return "schema"
    if has_data:
        return "data"
    return "unknown"


def describe(name: str, path: Path) -> Backup:
    """Read a backup and say what it is. Raises UnsupportedBackup for anything else."""
    if path.is_file():
        with path.open("rb") as handle:
            head = handle.read(4096)
        wrapper = wrapper_of(path, head)
        wrapped = open_wrapped(path, wrapper) if wrapper else None
        if wrapped is not None:
            return _describe_wrapped(name, path, wrapped)
    fmt, compression = sniff(path)
    if fmt == "plain":
        try:
            with path.open("rb") as handle:
                hashing = HashingReader(handle)
                source = io.BufferedReader(hashing) if compression == "none" else hashing
                with decompressing(cast(IO[bytes], source), compression) as stream:
                    scan = scan_plain(stream)
                sha, size = hashing.finish()
        except _READ_ERRORS as exc:
            raise UnsupportedBackup(f"{name}: cannot read the dump: {exc}") from exc
        return _finish(_from_scan(name, path, compression, scan, sha, size))
    try:
        return _finish(_describe_archive(name, path, fmt))
    except _READ_ERRORS as exc:
        raise UnsupportedBackup(f"{name}: cannot read the archive: {exc}") from exc


def _describe_wrapped(name: str, path: Path, wrapped: Wrapped) -> Backup:
    sha, size = _sha256(path)
    if wrapped.directory:
        toc_entry = next((e for e in wrapped.entries if e.name == "toc.dat"), None)
        assert toc_entry is not None
        with toc_entry.open() as stream:
            toc = read_toc(stream, name)
        backup = _from_toc(name, path, "directory", toc, sha, size)
    else:
        entry = wrapped.single
        with entry.open() as stream:
            head = stream.read(4096)
        if head.startswith(ARCHIVE_MAGIC):
            with entry.open() as stream:
                toc = read_toc(stream, name)
            backup = _from_toc(name, path, "custom", toc, sha, size)
        else:
            backup = _from_scan(
                name, path, *_scan_member(name, entry.name, entry.open, head), sha, size
            )
    backup.wrapper = wrapped.wrapper
    backup.warnings.append(
        f"a {wrapped.wrapper} archive holding "
        + ("a directory-format dump" if wrapped.directory else f"{wrapped.single.name}")
        + "; restored from inside it"
    )
    return _finish(backup)


def _scan_member(
    name: str, member: str, opener: Callable[[], IO[bytes]], head: bytes
) -> tuple[Compression, PlainScan]:
    compression = compression_of(head)
    try:
        with opener() as raw, decompressing(raw, compression) as stream:
            inner = stream.read(4096)
        if not looks_like_sql(inner):
            raise UnsupportedBackup(f"{name}: {member} inside it is not a pg_dump backup")
        with opener() as raw, decompressing(raw, compression) as stream:
            return compression, scan_plain(stream)
    except _READ_ERRORS as exc:
        raise UnsupportedBackup(f"{name}: cannot read {member} inside it: {exc}") from exc


def _from_scan(
    name: str, path: Path, compression: Compression, scan: PlainScan, sha: str, size: int
) -> Backup:
    if scan.unended_copy:
        raise UnsupportedBackup(
            f"{name}: the data of COPY {scan.unended_copy} never ends (no \\. line) and the "
            "dump goes on inside it: its rows were cut out of the file by hand; psql would "
            "read the rest of the file as rows. Dump again, or put back the `\\.` lines"
        )
    objects = scan.declarations.objects
    has_schema = any(o.kind in ("TABLE", "VIEW", "FUNCTION", "SCHEMA") for o in objects)
    warnings = [
        f"line {line}: psql meta-command {text!r} will run inside the sandbox only"
        for line, text in scan.meta_commands[:20]
    ]
    if scan.tool_messages:
        warnings.append(
            f"{scan.tool_messages} lines of pg_dump's own messages at the top (its errors "
            "redirected into the file, `2>&1`): skipped when restoring; dump with "
            "`pg_dump -f FILE` to keep them out"
        )
    if scan.cluster_dump:
        warnings.append(
            "pg_dumpall cluster dump: role statements aimed at the sandbox's own user are skipped"
        )
    if scan.databases:
        warnings.append(
            f"creates and connects to databases ({', '.join(scan.databases)}): every one is "
            f"restored; the sandbox hands out {scan.main_database}"
        )
    return Backup(
        name=name,
        tool_messages=scan.tool_messages,
        encoding=scan.encoding,
        superuser_owned=scan.superuser_owned[:50],
        sequence_values=scan.sequence_values,
        needs=sorted(scan.needs),
        needs_major=max(scan.needs.values(), default=None),
        format="plain",
        compression=compression,
        content=_content(has_schema, bool(scan.data_tables)),
        size_bytes=size,
        sha256=sha,
        source_server_version=scan.server_version,
        pg_dump_version=scan.pg_dump_version,
        cluster_dump=scan.cluster_dump,
        internal_options=scan.internal_options,
        databases=scan.databases,
        main_database=scan.main_database,
        per_database={
            name: DatabaseContent(objects=declared.objects, row_counts=dict(rows))
            for name, (declared, rows) in scan.per_database.items()
        },
        locales=sorted(scan.locales),
        connects_without_create=[
            d for d in scan.databases if d not in scan.created_databases and d != "postgres"
        ],
        clean=scan.clean,
        security_labels=scan.security_labels,
        ends_complete=scan.ends_complete if scan.pg_dump_version else None,
        mentions=sorted(scan.mentions),
        warnings=warnings,
        roles=sorted(
            scan.all_roles
            if scan.per_database
            else scan.declarations.roles - scan.declarations.creates_roles
        ),
        creates_roles=sorted(scan.created_roles),
        objects=objects,
        data_tables=sorted(scan.data_tables),
        columns=scan.columns.columns,
        anon_labels=scan.columns.labels,
        row_counts=dict(scan.data_tables),
        path=path,
    )


def _from_toc(name: str, path: Path, fmt: Format, toc: ArchiveToc, sha: str, size: int) -> Backup:
    objects, roles, data_tables = archive_declarations(toc)
    columns = scan_toc(toc)
    has_schema = any(o.kind in ("TABLE", "VIEW", "FUNCTION", "SCHEMA") for o in objects)
    compression: Compression = "none"
    if toc.compression in ("gzip", "zstd", "lz4"):
        compression = cast(Compression, toc.compression)
    return Backup(
        name=name,
        format=fmt,
        compression=compression,
        content=_content(has_schema, bool(data_tables)),
        size_bytes=size,
        sha256=sha,
        source_server_version=toc.server_version,
        pg_dump_version=toc.pg_dump_version,
        archive_version=f"{toc.version[0]}.{toc.version[1]}",
        internal_options=any("SET (pg_attver=" in (e.defn or "") for e in toc.entries),
        security_labels=any(e.desc == "SECURITY LABEL" for e in toc.entries),
        encoding=toc.encoding,
        sequence_values=_sequence_values(toc),
        superuser_owned=[
            f"{e.desc} {e.tag}" for e in toc.entries if e.desc in SUPERUSER_OWNED_KINDS
        ][:50],
        mentions=sorted({w for w in WATCHED for e in toc.entries if w in (e.defn or "")}),
        roles=sorted(roles),
        objects=objects,
        data_tables=sorted(data_tables),
        columns=columns.columns,
        anon_labels=columns.labels,
        path=path,
    )


def _sequence_values(toc: ArchiveToc) -> dict[str, tuple[int, bool]]:
    values: dict[str, tuple[int, bool]] = {}
    for entry in toc.entries:
        if entry.desc == "SEQUENCE SET" and (match := SETVAL.search(entry.defn or "")):
            literal = match.group(1).replace("''", "'")
            key = ".".join(split_qname(literal, entry.namespace or "public"))
            values[key] = (int(match.group(2)), match.group(3) == "true")
    return values


def _finish(backup: Backup) -> Backup:
    if backup.content == "unknown":
        backup.warnings.append("the backup declares no tables and carries no data")
    return backup
