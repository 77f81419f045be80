"""The commands a restore runs inside the sandbox: psql and pg_restore pipelines, and the
small scripts that count rows and read progress. Pure functions of their inputs."""

from __future__ import annotations

import shlex

from restorebox.backups.model import Backup
from restorebox.models import Sandbox
from restorebox.platforms.profiles import Profile
from restorebox.restore.translate import rules_for

NO_LABELS = " --no-security-labels"  # no label provider is loaded in a sandbox
STDIN = "-"  # a plain file streamed into the pipeline rather than staged
BOOTSTRAP_USER = "restorebox_bootstrap"  # images/postgres: initdb's superuser
DECOMPRESS = {"none": "cat", "gzip": "gzip -dc", "zstd": "zstd -dcq", "lz4": "lz4 -dcq"}
COUNT_AWK = shlex.quote(
    # The table is everything between "COPY " and the column list or "FROM stdin": quoted
    # names may hold spaces.
    r'/^COPY .* FROM stdin;$/ { t = substr($0, 6); sub(/ \(.*\) FROM stdin;$/, "", t); '
    r'sub(/ FROM stdin;$/, "", t); n = 0; c = 1; next } '
    r"c && /^\\\.$/ { print t, n; c = 0; next } "
    r"c { n++ }"
)
PROGRESS_SCRIPT = (
    'for fd in /proc/[0-9]*/fd/*; do t=$(readlink "$fd" 2>/dev/null) || continue; '
    'case "$t" in /tmp/restorebox/*) d=${fd%/fd/*}; n=${fd##*/}; '
    "p=$(sed -n 's/^pos:[[:space:]]*//p' \"$d/fdinfo/$n\" 2>/dev/null); "
    'echo "$p $t";; esac; done'
)


def _timeout(remaining: int) -> list[str]:
    return ["timeout", "-k", "10", str(remaining)]


def psql_command(
    backup: Backup,
    sandbox: Sandbox,
    remote: str,
    on_error: str,
    remaining: int,
    profile: Profile | None = None,
) -> list[str]:
    """Decompress (or pg_restore -f -), translate with sed, load with psql. The file is
    "$1" of the bash script, never spliced into it, or standard input (``STDIN``)."""
    stop = "1" if on_error == "stop" else "0"
    # No dump may drop, rename or demote the sandbox's own superuser (pg_dumpall files
    # carry role statements; a hostile plain file might too), nor the image's bootstrap
    # superuser (a dump of a restorebox sandbox names it). Such lines become comments,
    # so psql's line numbers still match the file.
    users = f"{sandbox.user}|{BOOTSTRAP_USER}"
    role_line = rf'^((CREATE|ALTER|DROP) (ROLE|USER) (IF EXISTS )?"?({users})"?( |;|$))'
    script = ""
    if backup.tool_messages:
        # pg_dump's own messages at the top of the file (2>&1) become comments, one line
        # each, until the dump itself begins.
        script += "\n".join(
            (
                "1{",
                ":messages",
                "/^pg_dump(all)?: /{",
                "s/^/-- skipped by restorebox: /",
                "n",
                "b messages",
                "}",
                "}",
                "",
            )
        )
    # COPY data passes untouched: the rules are for statements only.
    script += r"/^COPY .* FROM stdin;$/,/^\\\.$/b" + "\n"
    script += f"s/{role_line}/-- skipped by restorebox: \\1/I"
    for rule in rules_for(backup, sandbox.postgres_version or 0, profile):
        script += "\n" + rule.sed
    source = DECOMPRESS[backup.compression]
    if remote != STDIN:
        source += ' "$1"'
    if backup.format != "plain":
        options = NO_LABELS if backup.security_labels else ""
        if backup.content == "data":
            options += " --data-only --disable-triggers"
        source = f'pg_restore -f -{options} "$1"'
    pipeline = f"{source} | sed -E {shlex.quote(script)}"
    # Whatever the dump's queries print goes nowhere: only stderr is read, streamed. Output
    # unaligned and tuples only, to /dev/null: psql formats every row it prints, and a dump
    # whose SELECTs return a gigabyte costs minutes of aligned formatting (-A -t -o).
    pipeline += f" | psql -X -q -b -A -t -o /dev/null -v ON_ERROR_STOP={stop} -f - >/dev/null"
    return [*_timeout(remaining), "bash", "-o", "pipefail", "-c", pipeline, "restore", remote]


def pg_restore_command(
    backup: Backup, database: str, remote: str, on_error: str, remaining: int, jobs: int
) -> list[str]:
    argv = [*_timeout(remaining), "pg_restore", "--verbose", "--no-password", "-d", database]
    if backup.format in ("custom", "directory") and jobs > 1:
        argv += ["-j", str(jobs)]
    if on_error == "stop":
        argv.append("--exit-on-error")
    if backup.content == "data":
        argv += ["--data-only", "--disable-triggers"]
    if backup.security_labels:
        argv.append(NO_LABELS.strip())
    argv.append(remote)
    return argv
