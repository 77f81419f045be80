"""The `restorebox` command: run the service, or talk to it over its API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import ValidationError

from restorebox.auth.tokens import read_for_client
from restorebox.errors import RestoreboxError
from restorebox.settings import Settings
from restorebox.tools import drills_cli
from restorebox.tools.client import Client, ClientError, SandboxFailed
from restorebox.tools.progress_view import ProgressView
from restorebox.tools.text import table

DRILL_COMMANDS = {"series", "drills", "drill", "verify"}


def _client(settings: Settings, args: argparse.Namespace) -> Client:
    url = args.url or os.environ.get("RESTOREBOX_URL") or f"http://{settings.host}:{settings.port}"
    token = os.environ.get("RESTOREBOX_TOKEN") or read_for_client(settings)
    return Client(url, token, timeout=3600)


def _show(sandbox: dict[str, Any]) -> str:
    out = [
        f"id:        {sandbox['id']}",
        f"status:    {sandbox['status']}",
        f"postgres:  {sandbox['postgres_version']}",
        f"database:  {sandbox['database']}",
        f"backups:   {', '.join(sandbox['backups']) or '-'}",
        f"expires:   {sandbox['expires_at']}",
        f"verdict:   {sandbox.get('verdict') or '-'}",
    ]
    if sandbox.get("connection_url"):
        out.append(f"url:       {sandbox['connection_url']}")
    if sandbox.get("error"):
        out.append(f"error:     {sandbox['error']['code']}: {sandbox['error']['message']}")
    if sandbox.get("progress"):
        p = sandbox["progress"]
        out.append(f"progress:  {p['phase']} {p['bytes_done']}/{p['bytes_total']} bytes")
    restore = sandbox.get("restore")
    if restore:
        out.append("")
        out.append(
            table(
                [
                    [
                        s["backup"],
                        s["format"],
                        s["content"],
                        s["tool"],
                        str(s["bytes"]),
                        f"{s['duration_seconds']:.2f}s",
                        "yes" if s["triggers_disabled"] else "no",
                    ]
                    for s in restore["steps"]
                ],
                ["backup", "format", "content", "tool", "bytes", "time", "triggers off"],
            )
        )
        if restore.get("roles_created"):
            out.append(f"roles created: {', '.join(restore['roles_created'])}")
        for e in restore.get("errors", [])[:20]:
            where = f":{e['line']}" if e.get("line") else ""
            out.append(f"  error {e['backup']}{where}: {e['message']}")
    masking = sandbox.get("masking")
    if masking:
        out += ["", f"masking:   {masking['source']} in {masking['seconds']}s"]
        out.append(
            table(
                [
                    [c["table"], c["column"], c["strategy"], str(c["rows"]), c["via"]]
                    for c in masking["columns"]
                ],
                ["table", "column", "strategy", "rows", "why"],
            )
        )
        for c in masking.get("suspicious", []):
            out.append(f"  not in the policy, looks personal: {c['table']}.{c['column']}")
        for leak in masking.get("leaks", []):
            out.append(f"  LEAK: original values in {leak['table']}.{leak['column']}")
    if sandbox.get("probes"):
        out.append("")
        out.append(
            table(
                [
                    [p["name"], p["status"], f"{p['duration_seconds']:.2f}s", p["detail"][:100]]
                    for p in sandbox["probes"]
                ],
                ["probe", "result", "time", "detail"],
            )
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`restorebox show ID | head`): not an error worth a
        # traceback. Python flushes stdout at exit; point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restorebox", description=__doc__)
    parser.add_argument("--url", help="API base URL (default http://HOST:PORT from settings)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the service in the foreground")
    serve_cmd.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default=os.environ.get("RESTOREBOX_LOG_FORMAT", "auto"),
        help="auto: readable coloured lines on a terminal, JSON lines otherwise",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    create = sub.add_parser("create", help="create a sandbox")
    create.add_argument(
        "--backup",
        "-b",
        action="append",
        default=[],
        help="backup name; repeat to restore several in order",
    )
    create.add_argument("--postgres", help="PostgreSQL major")
    create.add_argument("--ttl", type=int, help="lifetime in seconds")
    create.add_argument("--database")
    create.add_argument("--on-error", choices=["stop", "continue"], default="stop")
    create.add_argument("--wait", action="store_true", help="wait until ready; print the URL")
    create.add_argument("--snapshot", help="copy this snapshot (id or name) instead of backups")
    create.add_argument(
        "--fresh", action="store_true", help="restore from the backups even if a snapshot has them"
    )
    create.add_argument(
        "--masking",
        help='mask personal data: "none", a policy file in the backups folder, @FILE for a '
        "local YAML/JSON policy, or an inline JSON object (default: the dump's own "
        "PostgreSQL Anonymizer labels)",
    )
    create.add_argument(
        "--no-snapshot",
        action="store_true",
        help="a one-off check: do not keep a snapshot of the restore (ready sooner)",
    )
    sub.add_parser("ls", help="list sandboxes", parents=[as_json])
    show = sub.add_parser("show", help="show a sandbox and its report", parents=[as_json])
    show.add_argument("id")
    rm = sub.add_parser("rm", help="delete a sandbox")
    rm.add_argument("id")
    extend = sub.add_parser("extend", help="give a sandbox a new TTL, counted from now")
    extend.add_argument("id")
    extend.add_argument("ttl", type=int)
    sub.add_parser("backups", help="list backups", parents=[as_json])
    reset = sub.add_parser("reset", help="bring a sandbox back to its restored state (same URL)")
    reset.add_argument("id")
    snap = sub.add_parser("snapshot", help="save a sandbox's current state as a named snapshot")
    snap.add_argument("id")
    snap.add_argument("name")
    sub.add_parser("snapshots", help="list snapshots", parents=[as_json])
    url_cmd = sub.add_parser("url", help="print a sandbox's connection URL")
    url_cmd.add_argument("id")
    wait_cmd = sub.add_parser("wait", help="wait until a sandbox is ready; print its URL")
    wait_cmd.add_argument("id")
    wait_cmd.add_argument("--timeout", type=float, help="give up after this many seconds")
    psql_cmd = sub.add_parser(
        "psql",
        help="open psql on a sandbox (restorebox psql ID -- -c 'select 1')",
        description="Runs the local psql with the sandbox's URL, or psql inside the "
        "sandbox's container when psql is not installed here.",
    )
    psql_cmd.add_argument("id")
    psql_cmd.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed on to psql")
    ui_cmd = sub.add_parser(
        "ui", help="print the dashboard's link (with the token in its fragment)"
    )
    ui_cmd.add_argument(
        "--no-token",
        action="store_true",
        help="print the link alone (paste the token into the page; nothing secret in "
        "your terminal's scrollback or a shared screen)",
    )
    gc = sub.add_parser(
        "gc",
        help="find (and with --yes remove) sandbox containers no live state owns",
        description="Talks to the engine directly. Removes this instance's strays; another "
        "instance's containers only when named with --instance (e.g. after its state "
        "directory was deleted).",
    )
    gc.add_argument("--instance", action="append", default=[], help="an instance id to clean")
    gc.add_argument("--yes", action="store_true", help="remove (default: only report)")
    sub.add_parser(
        "isolate",
        help="make sure sandboxes cannot open connections out (adds the engine host's "
        "firewall rules through the engine), then verify it",
        description="What the service checks at start. Runs a short-lived helper container "
        "on the engine's host network; works for a local engine, DOCKER_HOST and compose.",
    )
    drills_cli.add_parsers(sub, as_json)
    survey_cmd = sub.add_parser(
        "survey",
        help="restore every backup of a folder once (a service of its own) and say how each went",
        parents=[as_json],
    )
    survey_cmd.add_argument("folder", type=Path, help="a folder of backups")
    survey_cmd.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting refused (a short token, say): plainly
        for error in exc.errors():
            where = "RESTOREBOX_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"restorebox: {where}: {error['msg']}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return serve(settings, args.log_format)
    if args.command == "isolate":
        return isolate(settings)
    if args.command == "gc":
        return garbage_collect(settings, set(args.instance), args.yes)
    if args.command == "survey":
        return run_survey(settings, args.folder, args.json, args.output)
    client = _client(settings, args)
    try:
        if args.command in DRILL_COMMANDS:
            return drills_cli.run(args.command, settings, args, client)
        return run_command(client, args)
    except SandboxFailed as exc:
        print(_show(exc.sandbox.data), file=sys.stderr)
        return 1
    except (ClientError, TimeoutError) as exc:
        print(f"restorebox: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def run_command(client: Client, args: argparse.Namespace) -> int:
    command = args.command
    if command == "create":
        return create(client, args)
    if command in ("ls", "backups", "snapshots", "show"):
        return listing(client, args)
    if command == "rm":
        client.delete(args.id)
        print(f"removed {args.id}")
    elif command == "extend":
        extended = client.extend(args.id, args.ttl)
        print(f"{extended.id} now expires at {extended.data['expires_at']}")
    elif command == "reset":
        print(client.reset(args.id).url)
    elif command == "snapshot":
        saved = client.save_snapshot(args.id, args.name)
        print(
            f"saved {saved['name']} ({saved['size_bytes']} bytes); copy it with: "
            f"restorebox create --snapshot {saved['name']} --wait"
        )
    elif command == "url":
        sandbox = client.get(args.id)
        if sandbox.url is None:
            print(f"restorebox: sandbox {sandbox.id} is {sandbox.status}", file=sys.stderr)
            return 1
        print(sandbox.url)
    elif command == "wait":
        with ProgressView() as view:
            ready = client.wait(args.id, timeout=args.timeout, on_event=view)
        print(ready.url)
    elif command == "psql":
        return psql(client, args.id, args.psql_args)
    elif command == "ui":
        token = client.http.headers.get("Authorization", "").removeprefix("Bearer ")
        print(f"{client.url}/ui" + (f"#token={token}" if token and not args.no_token else ""))
    return 0


def create(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "on_error": args.on_error,
        "snapshot": args.snapshot,
        "postgres": args.postgres,
        "ttl_seconds": args.ttl,
        "database": args.database,
    }
    if args.fresh:
        options["fresh"] = True
    if args.no_snapshot:
        options["keep_snapshot"] = False
    if args.masking:
        options["masking"] = _masking(args.masking)
    backup = args.backup or None
    if not args.wait:
        print(client.create(backup, wait=False, **options).id)
        return 0
    with ProgressView() as view:
        sandbox = client.create(backup, on_event=view, **options)
    print(sandbox.url)
    return 0


def _masking(value: str) -> str | dict[str, Any]:
    """--masking: a name the service resolves, or a policy read here (@FILE, JSON)."""
    if value.startswith("@"):
        text = Path(value[1:]).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise SystemExit(f"{value[1:]}: a masking policy is a mapping with tables:")
        return loaded
    if value.lstrip().startswith("{"):
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise SystemExit("--masking: give a JSON object")
        return parsed
    return value


def listing(client: Client, args: argparse.Namespace) -> int:
    if args.command == "show":
        data: Any = client.get(args.id).data
        print(json.dumps(data, indent=2) if args.json else _show(data))
        return 0
    if args.command == "ls":
        data = [s.data for s in client.sandboxes()]
        rows = [
            [
                s["id"],
                s["status"],
                s["postgres_version"],
                ",".join(s["backups"]) or "-",
                s["expires_at"][:19],
                s.get("verdict") or "-",
            ]
            for s in data
        ]
        headers = ["id", "status", "pg", "backups", "expires", "verdict"]
    elif args.command == "snapshots":
        data = client.snapshots()
        rows = [
            [
                s["id"],
                s["name"] or "-",
                s["kind"],
                ",".join(s["backups"]) or "-",
                str(s["size_bytes"]),
                s["created_at"][:19],
                s["last_used_at"][:19],
                str(s.get("hot_copies", 0)),
            ]
            for s in data
        ]
        headers = ["id", "name", "kind", "backups", "bytes", "made", "used", "hot"]
    else:
        data = client.backups()
        if data["inspecting"]:
            # First look at new backups: they are read and hashed in the background.
            count = len(data["inspecting"])
            print(f"inspecting {count} backup{'' if count == 1 else 's'} ...", file=sys.stderr)
        deadline = time.monotonic() + 3600
        while data["inspecting"] and time.monotonic() < deadline:
            time.sleep(0.3)
            data = client.backups()
        for bad in data["unreadable"]:
            message = bad["error"]["message"]  # names the backup already
            named = (
                message if message.startswith(f"{bad['name']}:") else f"{bad['name']}: {message}"
            )
            print(f"unreadable: {named}", file=sys.stderr)
        rows = [
            [
                b["name"],
                b["format"],
                b["compression"],
                b["content"],
                str(b["size_bytes"]),
                b.get("pg_dump_version") or "-",
            ]
            for b in data["backups"]
        ]
        headers = ["name", "format", "compression", "content", "bytes", "pg_dump"]
    print(json.dumps(data, indent=2) if args.json else table(rows, headers))
    return 0


def psql(client: Client, sandbox_id: str, extra: list[str]) -> int:
    """Replace this process with psql on the sandbox."""
    sandbox = client.get(sandbox_id)
    if sandbox.url is None:
        print(f"restorebox: sandbox {sandbox.id} is {sandbox.status}", file=sys.stderr)
        return 1
    extra = extra[1:] if extra[:1] == ["--"] else extra
    if shutil.which("psql"):
        # The password goes through psql's environment, never its argv (`ps` shows argv).
        url, password = without_password(sandbox.url)
        env = {**os.environ, "PGPASSWORD": password} if password else dict(os.environ)
        os.execvpe("psql", ["psql", url, *extra], env)  # noqa: S606 -- psql takes over
    # No psql here: the sandbox's own, over its local socket, as the sandbox's user.
    import docker

    found = docker.from_env().containers.list(filters={"label": f"restorebox.sandbox={sandbox.id}"})
    if not found or not shutil.which("docker"):
        print(
            "restorebox: psql is not installed and the sandbox's container cannot be reached "
            "here; install psql (postgresql-client) or connect to: " + sandbox.url,
            file=sys.stderr,
        )
        return 1
    tty = ["-t"] if sys.stdin.isatty() else []
    user = urlsplit(sandbox.url).username or "restorebox"
    argv = ["docker", "exec", "-i", *tty, "-u", "postgres", str(found[0].id), "psql"]
    argv += ["-U", user, "-d", sandbox.data["database"], *extra]
    os.execvp("docker", argv)  # noqa: S606 -- psql in the container takes over
    return 0  # not reached


def without_password(url: str) -> tuple[str, str | None]:
    """``postgresql://u:secret@h:5/db`` -> (``postgresql://u@h:5/db``, ``secret``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl(), unquote(parts.password)


def garbage_collect(settings: Settings, instances: set[str], remove: bool) -> int:
    from restorebox.lifecycle.gc import collect, own_instance
    from restorebox.runtime import Runtime
    from restorebox.runtime.docker import DockerRuntime
    from restorebox.storage.opening import open_store

    runtime: Runtime = DockerRuntime()
    mine = own_instance(settings)
    if mine is not None:  # this instance's store: its snapshots and data directories
        runtime, _ = open_store(settings, runtime, mine, create=False)
    try:
        findings = collect(settings, runtime, instances=instances, remove=remove)
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(f"this instance: {own_instance(settings) or '(none: no state here)'}")
    rows = [
        [f.instance, f.sandbox, f.container, f.verdict, "removed" if f.removed else "-"]
        for f in findings
    ]
    print(table(rows, ["instance", "sandbox", "container", "verdict", "action"]))
    strays = sum(1 for f in findings if f.removable and not f.removed)
    if strays:
        print(
            f"{strays} leftovers (stray, or of a vanished instance); run again with --yes "
            "to remove them",
            file=sys.stderr,
        )
    return 0


def isolate(settings: Settings) -> int:
    from restorebox.lifecycle import isolation
    from restorebox.lifecycle.instance import instance_id, template
    from restorebox.runtime.docker import DockerRuntime

    try:
        problem = isolation.isolate(
            settings, DockerRuntime(), template(settings, instance_id(settings))
        )
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    if problem is not None:
        print(f"restorebox: sandboxes are not isolated: {problem}", file=sys.stderr)
        return 1
    print("sandbox isolation verified: sandboxes cannot open connections out")
    return 0


def run_survey(settings: Settings, folder: Path, json_out: bool, output: Path | None) -> int:
    from restorebox import logs
    from restorebox.tools import survey

    if not folder.is_dir():
        print(f"restorebox: {folder} is not a folder", file=sys.stderr)
        return 2
    logs.configure(os.environ.get("RESTOREBOX_LOG_LEVEL", "WARNING"), "text")

    def stop(signum: int, _frame: object) -> None:  # a kill cleans up like Ctrl-C does
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)

    def progress(result: survey.Outcome) -> None:
        print(f"{result.outcome:8} {result.backup}", file=sys.stderr, flush=True)

    try:
        with survey.own_service(folder.resolve(), settings) as client:
            results = survey.survey(client, progress)
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    if output is not None:
        output.write_text(survey.as_json(results))
    print(survey.as_json(results) if json_out else survey.render(results))
    return 0


def serve(settings: Settings, log_format: str = "auto") -> int:
    import uvicorn

    from restorebox import logs
    from restorebox.api import create_app

    logs.configure(os.environ.get("RESTOREBOX_LOG_LEVEL", "INFO"), log_format)
    try:
        app = create_app(settings)
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    base = f"http://{settings.host}:{settings.port}"
    logging.getLogger("restorebox").info(
        "restorebox listening",
        extra={"url": base, "dashboard": f"{base}/ui", "token_file": str(settings.token_file)},
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
