"""Benchmarks, reported as ratios against a baseline measured in the same run.

    scripts/bench [--runs N] [--scales 20,200]

1. Empty sandbox: POST /v1/sandboxes wait=true until ready, against a plain `docker run`
   of the same image plus a loop that waits for a real login.
2. Restore: the largest manufacturing fixture (complete plain dump) through restorebox
   (probes off), against a naive `docker run` + `psql < dump` into a fresh container.
3. Probes: probe time against restore time, at two database sizes.
4. Copies: for each size, a cold restore (which keeps a snapshot), a warm copy from the
   snapshot, and a reset, against the naive docker run + psql < dump.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import psycopg
from fastapi.testclient import TestClient

from restorebox.api import create_app
from restorebox.runtime.docker import DockerRuntime
from restorebox.settings import Settings
from tests.fixtures.manufacturing.generate import generate

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[2]


def median_time(fn: Callable[[], None], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def docker_run_until_login(image: str, dump: Path | None = None) -> None:
    """The baseline: what a developer would script by hand."""
    client = docker.from_env()
    password = secrets.token_hex(8)
    container = client.containers.run(
        image,
        detach=True,
        # The same contract restorebox uses: a named user and database.
        environment={
            "POSTGRES_PASSWORD": password,
            "POSTGRES_USER": "restorebox",
            "POSTGRES_DB": "sandbox",
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels={"restorebox.bench": "true"},
    )
    try:
        container.reload()
        while not container.attrs["NetworkSettings"]["Ports"].get("5432/tcp"):
            time.sleep(0.02)
            container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        url = f"postgresql://restorebox:{password}@127.0.0.1:{port}/sandbox"
        delay = 0.02
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("select 1")
                break
            except psycopg.OperationalError:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        else:
            raise TimeoutError(container.logs(tail=20).decode())
        if dump is not None:
            with dump.open("rb") as handle:
                subprocess.run(
                    [
                        "docker",
                        "exec",
                        "-i",
                        "-u",
                        "postgres",
                        container.id,
                        "psql",
                        "-X",
                        "-q",
                        "-U",
                        "restorebox",
                        "-d",
                        "postgres",
                    ],
                    stdin=handle,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
    finally:
        container.remove(force=True, v=True)


class Service:
    def __init__(self, backups: Path, state: Path) -> None:
        settings = Settings(
            state_dir=state,
            backups_dir=backups,
            api_token=TOKEN,
            restore_timeout_seconds=3600,
            probe_timeout_seconds=3600,
        )
        self.client = TestClient(create_app(settings, DockerRuntime()))
        self.client.__enter__()

    def create(self, keep: bool = False, **body: Any) -> dict[str, Any]:
        response = self.client.post("/v1/sandboxes", json={"wait": True, **body}, headers=AUTH)
        sandbox: dict[str, Any] = response.json()
        assert sandbox["status"] == "ready", sandbox
        if not keep:
            self.delete(sandbox["id"])
        return sandbox

    def delete(self, sandbox_id: str) -> None:
        self.client.delete(f"/v1/sandboxes/{sandbox_id}", headers=AUTH)

    def reset(self, sandbox_id: str) -> None:
        response = self.client.post(
            f"/v1/sandboxes/{sandbox_id}/reset", json={"wait": True}, headers=AUTH
        )
        assert response.json()["status"] == "ready", response.text

    def snapshots(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.client.get("/v1/snapshots", headers=AUTH).json()[
            "snapshots"
        ]
        return listed

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scales", default="20,200")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    work = Path(tempfile.mkdtemp(prefix="restorebox-bench-"))
    backups = work / "backups"
    backups.mkdir()
    fixtures: dict[int, Path] = {}
    rows: dict[int, int] = {}
    for scale in scales:
        out = REPO / "tests" / ".generated" / f"bench-{scale}"
        rows[scale] = sum(generate(out, scale).values())
        fixtures[scale] = out / "manufacturing_complete.sql"
        (backups / f"scale{scale}.sql").write_bytes(fixtures[scale].read_bytes())

    service = Service(backups, work / "state")
    print("## restorebox benchmarks\n")
    print(f"runs per figure: {args.runs} (median); machine: `nproc`={_nproc()}\n")

    base, _ = median_time(lambda: docker_run_until_login("restorebox/postgres:17"), args.runs)
    ours, _ = median_time(lambda: service.create(postgres="17"), args.runs)
    print("### Empty sandbox: POST wait=true to ready\n")
    print("| what | median s | ratio |\n|---|---|---|")
    print(f"| docker run + login loop (baseline) | {base:.2f} | 1.00 |")
    print(f"| restorebox POST /v1/sandboxes wait=true | {ours:.2f} | {ours / base:.2f} |\n")

    largest = max(scales)
    dump = fixtures[largest]
    runs = max(1, args.runs // 2)
    base, _ = median_time(lambda: docker_run_until_login("restorebox/postgres:15", dump), runs)
    ours, _ = median_time(
        lambda: service.create(backup=f"scale{largest}.sql", probes="none", fresh=True), runs
    )
    print(
        f"### Restore of the largest fixture ({dump.stat().st_size / 1e6:.1f} MB plain, "
        f"{rows[largest]} rows)\n"
    )
    print("| what | median s | ratio |\n|---|---|---|")
    print(f"| docker run + psql < dump (baseline) | {base:.2f} | 1.00 |")
    print(f"| restorebox restore, probes off | {ours:.2f} | {ours / base:.2f} |\n")

    print("### Probe time against restore time\n")
    print("| rows | restore s | probes s | probes / restore |\n|---|---|---|---|")
    for scale in scales:
        sandbox = service.create(backup=f"scale{scale}.sql")
        restore = sandbox["restore"]["duration_seconds"]
        probes = sum(p["duration_seconds"] for p in sandbox["probes"])
        print(f"| {rows[scale]} | {restore:.2f} | {probes:.2f} | {probes / restore:.2f} |")

    print("\n### Copies: cold restore, warm copy from the snapshot, reset\n")
    print(
        "| dump MB | naive s | cold s (ratio) | warm s (ratio) | reset s (ratio) "
        "| snapshot MB |\n|---|---|---|---|---|---|"
    )
    for scale in scales:
        print(copies_row(service, f"scale{scale}.sql", fixtures[scale], runs, args.runs))
    for snapshot in service.snapshots():
        service.client.delete(f"/v1/snapshots/{snapshot['id']}", headers=AUTH)
    service.close()


def copies_row(service: Service, name: str, dump: Path, runs: int, warm_runs: int) -> str:
    """One size: the naive load, a cold restore (keeping its snapshot), warm copies, resets."""
    naive, _ = median_time(lambda: docker_run_until_login("restorebox/postgres:15", dump), runs)
    cold, _ = median_time(lambda: service.create(backup=name, fresh=True), runs)
    warm, _ = median_time(lambda: service.create(backup=name), warm_runs)
    held = service.create(keep=True, backup=name)
    reset, _ = median_time(lambda: service.reset(held["id"]), warm_runs)
    service.delete(held["id"])
    size = next(s["size_bytes"] for s in service.snapshots() if s["backups"] == [name])
    return (
        f"| {dump.stat().st_size / 1e6:.1f} | {naive:.2f} "
        f"| {cold:.2f} ({cold / naive:.2f}) | {warm:.2f} ({warm / naive:.3f}) "
        f"| {reset:.2f} ({reset / naive:.3f}) | {size / 1e6:.0f} |"
    )


def _nproc() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
