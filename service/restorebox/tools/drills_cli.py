"""The drills commands of `restorebox`: series, drills SERIES, drill SERIES, verify."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from restorebox.drills.model import Drill
from restorebox.settings import Settings
from restorebox.tools.client import Client, ClientError
from restorebox.tools.text import table
from restorebox.tools.verify import CannotVerify, failing, junit, verify_here


def add_parsers(sub: Any, as_json: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "series", help="backup series, their last drill and staleness", parents=[as_json]
    )
    drills = sub.add_parser("drills", help="a series' drills, newest first", parents=[as_json])
    drills.add_argument("series")
    drill = sub.add_parser("drill", help="drill a series' newest backup now", parents=[as_json])
    drill.add_argument("series")
    verify = sub.add_parser(
        "verify",
        help="drill backups and exit 1 when something at the threshold is found (for CI)",
        description="Exit 0: nothing at or above --fail-on; 1: something; 2: could not run. "
        "Talks to the service given by --url or RESTOREBOX_URL (the files then name backups "
        "in its folder); otherwise runs the drill here against the local Docker engine.",
    )
    verify.add_argument("files", nargs="+", metavar="FILE", help="a backup, or a set in order")
    verify.add_argument("--against", help="a backup file or a drill id to compare with")
    verify.add_argument("--json", action="store_true", help="print the drill as JSON")
    verify.add_argument("--junit", metavar="PATH", help="write JUnit XML here")
    verify.add_argument("--fail-on", choices=["warn", "fail"], default="fail")


def run(command: str, settings: Settings, args: argparse.Namespace, client: Client) -> int:
    if command == "verify":
        return verify(settings, args, client)
    if command == "series":
        data = client.series()
        if args.json:
            print(json.dumps(data, indent=2))
            return 0
        if data.get("drills_file_error"):
            print(f"restorebox: {data['drills_file_error']}", file=sys.stderr)
        rows = [
            [
                s["name"],
                str(len(s["backups"])),
                (s["newest_at"] or "-")[:19],
                "STALE" if s["stale"] else "ok",
                _verdict(s["last_drill"]),
            ]
            for s in data["series"]
        ]
        print(table(rows, ["series", "backups", "newest", "arriving", "last drill"]))
        return 0
    if command == "drills":
        listed = client.drills(args.series)
        if args.json:
            print(json.dumps(listed, indent=2))
            return 0
        for drill in listed:
            print(_summary(drill))
        return 0
    drilled = client.start_drill(args.series)
    print(json.dumps(drilled, indent=2) if args.json else _summary(drilled))
    return 0 if drilled["verdict"] != "fail" else 1


def verify(settings: Settings, args: argparse.Namespace, client: Client) -> int:
    remote = bool(args.url or os.environ.get("RESTOREBOX_URL"))
    try:
        if remote:
            drill = Drill.model_validate(_remote(client, args))
        else:
            drill = verify_here(settings, [Path(f) for f in args.files], args.against)
    except (CannotVerify, ClientError) as exc:
        print(f"restorebox verify: {exc}", file=sys.stderr)
        return 2
    if args.junit:
        Path(args.junit).write_bytes(junit(drill, args.fail_on))
    if args.json:
        print(drill.model_dump_json(indent=2))
    else:
        print(_summary(drill.model_dump(mode="json")))
    if drill.facts is not None and drill.facts.status == "failed" and not drill.findings:
        return 2
    return 1 if failing(drill, args.fail_on) else 0


def _remote(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """Through the service: the files' series is drilled with its newest backup, which
    must be the last file given."""
    from restorebox.drills.series import read_name

    if args.against:
        raise CannotVerify("--against works only without a service (a service compares each "
                           "drill with its series' last good one)")  # fmt: skip
    series = read_name(args.files[-1]).series
    drill = client.start_drill(series)
    if drill["backups"][-1] != args.files[-1]:
        raise CannotVerify(
            f"the service drilled {drill['backups'][-1]}, the newest of series {series}, "
            f"not {args.files[-1]}"
        )
    return drill


def _verdict(drill: dict[str, Any] | None) -> str:
    if drill is None:
        return "-"
    return f"{drill['verdict'] or drill['status']} ({drill['started_at'][:19]})"


def _summary(drill: dict[str, Any]) -> str:
    head = (
        f"drill {drill['id']}  {drill['series']}  {drill.get('verdict') or drill['status']}"
        f"  {', '.join(drill['backups'])}"
    )
    lines = [head]
    for f in drill.get("findings", []):
        if f.get("ignored"):
            continue
        before_after = (
            f" ({f['before']} -> {f['after']})"
            if f.get("before") is not None or f.get("after") is not None
            else ""
        )
        lines.append(f"  {f['severity']:<4}  {f['code']:<17} {f['message']}{before_after}")
    return "\n".join(lines)
