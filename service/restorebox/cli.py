"""The `restorebox` command: run the service, or talk to it over its API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx

from .errors import RestoreboxError
from .settings import Settings
from .tokens import read_for_client


class ApiError(Exception):
    pass


class Client:
    def __init__(self, base_url: str, token: str | None, timeout: float = 3600) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach restorebox at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                raise ApiError(f"{body.get('code')}: {body.get('message')}")
            except ValueError:
                raise ApiError(f"HTTP {response.status_code}: {response.text[:500]}") from None
        return response.json() if response.content else None


def _client(settings: Settings, args: argparse.Namespace) -> Client:
    url = (
        args.url or os.environ.get("RESTOREBOX_URL") or (f"http://{settings.host}:{settings.port}")
    )
    return Client(url, read_for_client(settings))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)


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
            _table(
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
    if sandbox.get("probes"):
        out.append("")
        out.append(
            _table(
                [
                    [p["name"], p["status"], f"{p['duration_seconds']:.2f}s", p["detail"][:100]]
                    for p in sandbox["probes"]
                ],
                ["probe", "result", "time", "detail"],
            )
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restorebox", description=__doc__)
    parser.add_argument("--url", help="API base URL (default http://HOST:PORT from settings)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service in the foreground")
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
        "--no-snapshot",
        action="store_true",
        help="a one-off check: do not keep a snapshot of the restore (ready sooner)",
    )
    sub.add_parser("ls", help="list sandboxes")
    show = sub.add_parser("show", help="show a sandbox and its report")
    show.add_argument("id")
    rm = sub.add_parser("rm", help="delete a sandbox")
    rm.add_argument("id")
    extend = sub.add_parser("extend", help="give a sandbox a new TTL, counted from now")
    extend.add_argument("id")
    extend.add_argument("ttl", type=int)
    sub.add_parser("backups", help="list backups")
    reset = sub.add_parser("reset", help="bring a sandbox back to its restored state (same URL)")
    reset.add_argument("id")
    snap = sub.add_parser("snapshot", help="save a sandbox's current state as a named snapshot")
    snap.add_argument("id")
    snap.add_argument("name")
    sub.add_parser("snapshots", help="list snapshots")
    gc = sub.add_parser(
        "gc",
        help="find (and with --yes remove) sandbox containers no live state owns",
        description="Talks to the engine directly. Removes this instance's strays; another "
        "instance's containers only when named with --instance (e.g. after its state "
        "directory was deleted).",
    )
    gc.add_argument("--instance", action="append", default=[], help="an instance id to clean")
    gc.add_argument("--yes", action="store_true", help="remove (default: only report)")
    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "serve":
        return serve(settings)
    if args.command == "gc":
        return garbage_collect(settings, set(args.instance), args.yes)
    client = _client(settings, args)
    try:
        if args.command == "create":
            body: dict[str, Any] = {"wait": args.wait, "on_error": args.on_error}
            if args.snapshot:
                body["snapshot"] = args.snapshot
            if args.fresh:
                body["fresh"] = True
            if args.no_snapshot:
                body["keep_snapshot"] = False
            if args.backup:
                body["backup"] = args.backup
            for key, value in (
                ("postgres", args.postgres),
                ("ttl_seconds", args.ttl),
                ("database", args.database),
            ):
                if value is not None:
                    body[key] = value
            sandbox = client.call("POST", "/v1/sandboxes", json=body)
            if args.wait:
                if sandbox["status"] != "ready":
                    print(_show(sandbox), file=sys.stderr)
                    return 1
                print(sandbox["connection_url"])
            else:
                print(sandbox["id"])
        elif args.command == "ls":
            items = client.call("GET", "/v1/sandboxes")["sandboxes"]
            print(
                _table(
                    [
                        [
                            s["id"],
                            s["status"],
                            s["postgres_version"],
                            ",".join(s["backups"]) or "-",
                            s["expires_at"][:19],
                            s.get("verdict") or "-",
                        ]
                        for s in items
                    ],
                    ["id", "status", "pg", "backups", "expires", "verdict"],
                )
            )
        elif args.command == "show":
            print(_show(client.call("GET", f"/v1/sandboxes/{args.id}")))
        elif args.command == "rm":
            client.call("DELETE", f"/v1/sandboxes/{args.id}")
            print(f"removed {args.id}")
        elif args.command == "extend":
            s = client.call("PATCH", f"/v1/sandboxes/{args.id}", json={"ttl_seconds": args.ttl})
            print(f"{s['id']} now expires at {s['expires_at']}")
        elif args.command == "reset":
            reset_done = client.call("POST", f"/v1/sandboxes/{args.id}/reset", json={"wait": True})
            print(reset_done["connection_url"] or reset_done["status"])
        elif args.command == "snapshot":
            saved = client.call(
                "POST", f"/v1/sandboxes/{args.id}/snapshot", json={"name": args.name}
            )
            print(
                f"saved {saved['name']} ({saved['size_bytes']} bytes); copy it with: "
                f"restorebox create --snapshot {saved['name']} --wait"
            )
        elif args.command == "snapshots":
            rows = [
                [
                    s["id"],
                    s["name"] or "-",
                    s["kind"],
                    ",".join(s["backups"]) or "-",
                    str(s["size_bytes"]),
                    s["created_at"][:19],
                    s["last_used_at"][:19],
                ]
                for s in client.call("GET", "/v1/snapshots")["snapshots"]
            ]
            print(_table(rows, ["id", "name", "kind", "backups", "bytes", "made", "used"]))
        elif args.command == "backups":
            data = client.call("GET", "/v1/backups")
            if data["inspecting"]:
                # First look at new backups: they are read and hashed in the background.
                print(f"inspecting {len(data['inspecting'])} backups ...", file=sys.stderr)
            deadline = time.monotonic() + 3600
            while data["inspecting"] and time.monotonic() < deadline:
                time.sleep(0.3)
                data = client.call("GET", "/v1/backups")
            print(
                _table(
                    [
                        [
                            b["name"],
                            b["format"],
                            b["compression"],
                            b["content"],
                            str(b["size_bytes"]),
                            b.get("pg_dump_version") or "-",
                        ]
                        for b in data["backups"]
                    ],
                    ["name", "format", "compression", "content", "bytes", "pg_dump"],
                )
            )
            for bad in data["unreadable"]:
                print(f"unreadable: {bad['name']}: {bad['error']['message']}", file=sys.stderr)
    except ApiError as exc:
        print(f"restorebox: {exc}", file=sys.stderr)
        return 1
    return 0


def garbage_collect(settings: Settings, instances: set[str], remove: bool) -> int:
    from .gc import collect, own_instance
    from .runtime.docker import DockerRuntime

    try:
        findings = collect(settings, DockerRuntime(), instances=instances, remove=remove)
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(f"this instance: {own_instance(settings) or '(none: no state here)'}")
    rows = [
        [f.instance, f.sandbox, f.container, f.verdict, "removed" if f.removed else "-"]
        for f in findings
    ]
    print(_table(rows, ["instance", "sandbox", "container", "verdict", "action"]))
    strays = sum(1 for f in findings if f.verdict.startswith("stray") and not f.removed)
    if strays:
        print(f"{strays} stray containers; run again with --yes to remove them", file=sys.stderr)
    return 0


def serve(settings: Settings) -> int:
    import uvicorn

    from . import logs
    from .api import create_app

    logs.configure(os.environ.get("RESTOREBOX_LOG_LEVEL", "INFO"))
    try:
        app = create_app(settings)
    except RestoreboxError as exc:
        print(f"restorebox: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "msg": "restorebox listening",
                "url": f"http://{settings.host}:{settings.port}",
                "token_file": str(settings.token_file),
            }
        ),
        file=sys.stderr,
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
