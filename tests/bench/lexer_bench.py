"""`scripts/bench --only lexer`: the SQL lexer and its rewrites beside the sed script they
replaced, on the same pgbench dumps (plain, and --inserts), in the same run.

The baseline is the sed every plain dump went through before the lexer: COPY data passed
over, the guard on the sandbox's own superuser. The lexer's side is what a restore now
runs on every plain dump: units, the guard, and the translation rules of a --clean dump."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from restorebox.restore.role_rules import guard_roles
from restorebox.restore.translate import CLEAN
from restorebox.sql.rewrite import rewritten

SED_BASELINE = (
    r"/^COPY .* FROM stdin;$/,/^\\\.$/b" + "\n"
    r's/^((CREATE|ALTER|DROP) (ROLE|USER) (IF EXISTS )?"?(restorebox|restorebox_bootstrap)"?'
    r"( |;|$))/-- skipped by restorebox: \1/I"
)
CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def sed_seconds(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as source:
        subprocess.run(
            ["sed", "-E", SED_BASELINE], stdin=source, stdout=subprocess.DEVNULL, check=True
        )
    return time.perf_counter() - started


def lexer_seconds(path: Path) -> float:
    rewrites = [guard_roles(["restorebox", "restorebox_bootstrap"]).rewrite, CLEAN.rewrite]
    started = time.perf_counter()
    for _ in rewritten(_chunks(path), rewrites):
        pass
    return time.perf_counter() - started


def inserts_dump(plain: Path) -> Path:
    """The same database as one INSERT per row (pg_dump --inserts), made from the plain
    dump's COPY rows: the statement-heavy shape of dump."""
    target = plain.with_name(plain.stem + "-inserts.sql")
    if target.exists() and target.stat().st_mtime >= plain.stat().st_mtime:
        return target
    with plain.open("rb") as source, target.open("wb") as out:
        table = None
        for line in source:
            if table is None:
                if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
                    table = line[5:].split(b" (")[0]
                    continue
                out.write(line)
            elif line == b"\\.\n":
                table = None
            else:
                values = b", ".join(
                    b"NULL" if v == b"\\N" else b"'" + v.replace(b"'", b"''") + b"'"
                    for v in line.rstrip(b"\n").split(b"\t")
                )
                out.write(b"INSERT INTO " + table + b" VALUES (" + values + b");\n")
    return target


def report_lexer(sizes: list[int], runs: int) -> None:
    from tests.bench.bench import median_time, pgbench_dumps

    print("## restorebox benchmarks: the SQL lexer\n")
    print(f"`scripts/bench --only lexer --sizes {','.join(map(str, sizes))} --runs {runs}`; ")
    print(f"median of {runs} runs, one core each, output discarded.\n")
    print("| dump | MB | sed (baseline) MB/s | lexer + rewrites MB/s | ratio (sed time = 1) |")
    print("|---|---|---|---|---|")
    for size in sizes:
        plain, _ = pgbench_dumps(size)
        for label, path in (("plain (COPY)", plain), ("--inserts", inserts_dump(plain))):
            mb = path.stat().st_size / 1e6
            sed_s = median_time(lambda p=path: sed_seconds(p), runs)
            lexer_s = median_time(lambda p=path: lexer_seconds(p), runs)
            print(
                f"| {label} | {mb:.0f} | {mb / sed_s:.0f} | {mb / lexer_s:.0f} "
                f"| {lexer_s / sed_s:.2f} |"
            )
