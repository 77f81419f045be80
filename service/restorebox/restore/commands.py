"""The commands a restore runs inside the sandbox: psql and pg_restore pipelines, and the
small scripts that count rows and read progress. Pure functions of their inputs."""

from __future__ import annotations

import shlex

from restorebox.backups.model import Backup
from restorebox.models import Sandbox
from restorebox.platforms.profiles import Profile
from restorebox.restore.role_rules import guard_roles
from restorebox.restore.rule import Applied
from restorebox.restore.translate import rules_for

NO_LABELS = " --no-security-labels"  # no label provider is loaded in a sandbox
BOOTSTRAP_USER = "restorebox_bootstrap"  # images/postgres: initdb's superuser
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


def psql_command(on_error: str, remaining: int) -> list[str]:
    """psql loading SQL from its standard input: a plain file's text, or an archive's as
    ``pg_restore -f -`` writes it, after the service's rewrites (``rewrites_for``)."""
    stop = "1" if on_error == "stop" else "0"
    # Whatever the dump's queries print goes nowhere: only stderr is read, streamed. Output
    # unaligned and tuples only, to /dev/null: psql formats every row it prints, and a dump
    # whose SELECTs return a gigabyte costs minutes of aligned formatting (-A -t -o).
    return [
        *_timeout(remaining),
        "psql",
        "-X",
        "-q",
        "-b",
        "-A",
        "-t",
        "-o",
        "/dev/null",
        "-v",
        f"ON_ERROR_STOP={stop}",
        "-f",
        "-",
    ]


def archive_sql_command(backup: Backup, remote: str, remaining: int) -> list[str]:
    """An archive's SQL on standard output, for the rewrites and psql (``psql_command``)."""
    argv = [*_timeout(remaining), "pg_restore", "-f", "-", "--no-tablespaces"]
    if backup.security_labels:
        argv.append(NO_LABELS.strip())
    if backup.content == "data":
        argv += ["--data-only", "--disable-triggers"]
    return [*argv, remote]


def rewrites_for(backup: Backup, sandbox: Sandbox, profile: Profile | None) -> Applied:
    """What a backup's SQL passes through on its way to psql: the guard on the sandbox's
    own superusers (always), then the translation rules it needs."""
    guard = guard_roles([sandbox.user, BOOTSTRAP_USER])
    return Applied([guard, *rules_for(backup, sandbox.postgres_version or 0, profile)])


def pg_restore_command(
    backup: Backup, database: str, remote: str, on_error: str, remaining: int, jobs: int
) -> list[str]:
    argv = [*_timeout(remaining), "pg_restore", "--verbose", "--no-password", "-d", database]
    argv.append("--no-tablespaces")  # a sandbox has none of the source's
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
