"""`scripts/bench --only masking`: the masking step on a table of a million people, beside
pganonymize (PyPI: YAML rules, Faker, row by row) on the same table in the same run.

The table has five masked columns (e-mail, name, phone, address, free text) and a primary
key; it is dumped once (custom format) and both tools start from that dump restored.
restorebox's time is what its report says the masking step took (resolve, scan, sample,
the UPDATEs, the rewrite of the table and its statistics, the WAL removal); pganonymize's
is its command's wall time, without the restore. Target (issue 21): at least 250,000 rows
per second on 2 cores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.bench import Service, naive_container

# The comparison tool, in a throwaway virtualenv of its own (not a restorebox dependency).
PGANONYMIZE = ["pganonymize==0.13.0", "psycopg2-binary==2.9.13", "Faker==40.63.0"]
POLICY = {
    "tables": {
        "public.people": {
            "email": "email",
            "full_name": "name",
            "phone": "phone",
            "street": "address",
            "notes": "text",
        }
    }
}
PGANONYMIZE_SCHEMA = """
tables:
  - people:
      primary_key: id
      chunk_size: 10000
      fields:
        - email: {provider: {name: faker.unique.email}}
        - full_name: {provider: {name: faker.name}}
        - phone: {provider: {name: faker.phone_number}}
        - street: {provider: {name: faker.street_address}}
        - notes: {provider: {name: faker.text}}
"""
FILL = """
CREATE TABLE people (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL,
    phone text,
    street text,
    notes text,
    joined date NOT NULL
);
INSERT INTO people
SELECT g,
       'person' || g || '@' || (ARRAY['mail.test', 'corp.test', 'post.test'])[1 + g %% 3],
       initcap(left(md5(g::text), 6)) || ' ' || initcap(substr(md5(g::text), 7, 9)),
       '+1 (' || (200 + g %% 700) || ') 555-' || lpad((g %% 10000)::text, 4, '0'),
       (g %% 900 + 1) || ' ' || initcap(substr(md5((g * 7)::text), 1, 8)) || ' Street',
       CASE WHEN g %% 3 = 0 THEN NULL
            ELSE repeat(md5((g * 13)::text) || ' called about the order. ', 1 + g %% 4) END,
       date '2015-01-01' + (g %% 3000)
FROM generate_series(1, %s) AS g;
"""


def people_dump(backups: Path, rows: int) -> str:
    """The table, made in a plain container and dumped (custom format) into ``backups``."""
    name = f"people_{rows}.dump"
    with naive_container() as (container, _):
        exec_ = ["docker", "exec", "-i", "-u", "postgres", container.id]
        psql = [*exec_, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "restorebox", "sandbox"]
        subprocess.run(psql, input=(FILL % rows).encode(), check=True)
        with (backups / name).open("wb") as out:
            subprocess.run(
                [*exec_, "pg_dump", "-Fc", "-U", "restorebox", "sandbox"], stdout=out, check=True
            )
    return name


def restorebox_rate(
    service: Service, name: str, rows: int
) -> tuple[float, float, dict[str, float]]:
    service.describe(name)
    sandbox = service.create(backup=name, masking=POLICY, keep_snapshot=False, probes="none")
    seconds = float(sandbox["masking"]["seconds"])
    phases = dict(sandbox["masking"]["phases"])
    leaks = next(p for p in sandbox["probes"] if p["name"] == "masking_leaks")
    assert leaks["status"] == "pass", leaks
    service.delete(sandbox["id"])
    return seconds, rows / seconds, phases


def pganonymize_rate(work: Path, backups: Path, name: str, rows: int) -> tuple[float, float]:
    venv = work / "pganonymize"
    if not (venv / "bin" / "pganonymize").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *PGANONYMIZE],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    schema = work / "pganonymize.yaml"
    schema.write_text(PGANONYMIZE_SCHEMA)
    with naive_container() as (container, url):
        restore = ["docker", "exec", "-i", "-u", "postgres", container.id]
        with (backups / name).open("rb") as dump:
            subprocess.run(
                [*restore, "pg_restore", "-U", "restorebox", "-d", "sandbox"],
                stdin=dump,
                check=True,
            )
        password, rest = url.removeprefix("postgresql://restorebox:").split("@", 1)
        port = rest.split(":", 1)[1].split("/", 1)[0]
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(venv / "bin" / "pganonymize"), "--schema", str(schema), "--dbname", "sandbox",
                "--user", "restorebox", "--password", password, "--host", "127.0.0.1",
                "--port", port,
            ],
            env={**os.environ, "PGPASSWORD": password},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pganonymize failed: {done.stderr.decode()[-2000:]}")
    return seconds, rows / seconds


def report_masking(service: Service, work: Path, rows: int) -> None:
    name = people_dump(service.backups, rows)
    ours, our_rate, phases = restorebox_rate(service, name, rows)
    theirs, their_rate = pganonymize_rate(work, service.backups, name, rows)
    print(f"`scripts/bench --only masking --rows {rows}`; {os.cpu_count()} cores\n")
    print("| masking step, 5 columns | seconds | rows/s | vs pganonymize |")
    print("|---|---|---|---|")
    print(f"| pganonymize 0.13 (baseline) | {theirs:.1f} | {their_rate:,.0f} | 1.0x |")
    print(f"| restorebox | {ours:.1f} | {our_rate:,.0f} | {theirs / ours:.1f}x faster |")
    print("\nrestorebox's phases (s): " + ", ".join(f"{k} {v}" for k, v in phases.items()))
    target = "met" if our_rate >= 250_000 else "NOT met"
    print(f"\ntarget at least 250,000 rows/s: {target}")
