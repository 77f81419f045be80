"""`restorebox verify`, for CI: drill the given backup (set) and say whether anything at
or above a threshold was found (exit 0 / 1; 2 when it could not run).

With a service configured (``--url`` or ``RESTOREBOX_URL``) the files name backups in
its backups folder and the service drills them. Otherwise the drill runs in this process
against the local Docker engine (a CI job has Docker but no service): the files are
linked (or copied) into a scratch backups folder under ``RESTOREBOX_STATE_DIR``, and the
drill history is kept there, so successive runs compare with the last good one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from restorebox.drills.model import SEVERITY_RANK, Drill, Finding
from restorebox.drills.series import read_name
from restorebox.settings import Settings


class CannotVerify(Exception):
    """The drill could not run (exit 2): the reason says why and what to do."""


def failing(drill: Drill, fail_on: str) -> list[Finding]:
    """Findings at or above ``fail_on`` (ignored ones aside)."""
    rank = SEVERITY_RANK[fail_on]
    return [f for f in drill.findings if not f.ignored and SEVERITY_RANK[f.severity] >= rank]


def junit(drill: Drill, fail_on: str) -> bytes:
    """JUnit XML: a test case per probe and per declared check, and one per finding at
    the threshold that is neither; failures where the drill found something."""
    facts = drill.facts
    bad = failing(drill, fail_on)
    suite = ET.Element("testsuite", name=f"restorebox verify {drill.series}")
    cases = 0
    failures = 0

    def case(name: str, problem: str | None) -> None:
        nonlocal cases, failures
        cases += 1
        element = ET.SubElement(suite, "testcase", classname=drill.series, name=name)
        if problem is not None:
            failures += 1
            ET.SubElement(element, "failure", message=problem[:500]).text = problem

    accounted: set[int] = set()
    for probe, status in sorted((facts.probes if facts else {}).items()):
        case(f"probe {probe}", f"probe {probe} failed" if status == "fail" else None)
        accounted |= {id(f) for f in bad if f.code == "VERDICT_FAIL"}
    for name in sorted(facts.checks if facts else {}):
        mine = [f for f in bad if f.code == "CHECK_FAILED" and f.object == name]
        accounted |= {id(f) for f in mine}
        case(f"check {name}", mine[0].message if mine else None)
    for finding in bad:
        if id(finding) not in accounted:
            case(f"{finding.code} {finding.object or ''}".strip(), finding.message)
    if cases == 0:
        case("drill", None)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


@contextlib.contextmanager
def scratch_folder(settings: Settings, files: list[Path]) -> Iterator[Path]:
    """A backups folder holding ``files`` under their own names (hard links where the
    filesystem allows, copies elsewhere), removed afterwards."""
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix="verify-", dir=settings.state_dir))
    try:
        for source in files:
            target = folder / source.name
            if source.is_dir():
                shutil.copytree(source, target)
                continue
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def verify_here(settings: Settings, files: list[Path], against: str | None) -> Drill:
    """Drill ``files`` in this process against the local Docker engine."""
    from restorebox.backups import Catalog
    from restorebox.drills.runner import DrillRunner
    from restorebox.drills.store import DrillStore
    from restorebox.errors import RestoreboxError
    from restorebox.lifecycle.instance import instance_id
    from restorebox.lifecycle.instance import template as instance_template
    from restorebox.lifecycle.isolation import verify as verify_isolation
    from restorebox.lifecycle.manager import SandboxManager
    from restorebox.lifecycle.store import Store
    from restorebox.runtime.docker import DockerRuntime

    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise CannotVerify(f"no such backup: {', '.join(missing)}")
    against_file = Path(against) if against and Path(against).exists() else None
    store = DrillStore(settings.state_dir / "drills.sqlite3", settings.drill_retention)
    baseline: Drill | None = None
    if against and against_file is None:
        try:
            baseline = store.get(against)
        except RestoreboxError as exc:
            raise CannotVerify(f"--against {against}: neither a file nor a drill id") from exc
    series = read_name(files[-1].name).series
    with scratch_folder(settings, [*files, *([against_file] if against_file else [])]) as folder:
        local = settings.model_copy(
            update={"backups_dir": folder, "snapshot_max_bytes": 0, "drills": False}
        )
        try:
            runtime = DockerRuntime()
            instance = instance_id(local)
            verify_isolation(local, runtime, instance_template(local, instance))
            catalog = Catalog(folder, max_bytes=local.max_backup_bytes, cache_file=None)
            manager = SandboxManager(local, Store(local.database_file), runtime, catalog, instance)
        except RestoreboxError as exc:
            raise CannotVerify(exc.message) from exc
        runner = DrillRunner(local, manager, catalog, store)
        try:
            if against_file is not None:
                baseline = runner.run(_drill(series, [against_file.name]))
            return runner.run(_drill(series, [f.name for f in files]), baseline)
        finally:
            runner.shutdown()
            manager.shutdown()
            catalog.close()


def _drill(series: str, backups: list[str]) -> Drill:
    return Drill(
        id=secrets.token_hex(6), series=series, backups=backups, started_at=datetime.now(UTC)
    )
