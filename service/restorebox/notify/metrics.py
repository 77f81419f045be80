"""Prometheus metrics (prometheus-client), one registry per service.

Counters and histograms move with what happens: every status change passes through
``observe`` (a listener on the state machine), cache look-ups and reconciliation report
in; gauges (sandboxes by status, the snapshot cache) are read from state at scrape time,
so they are right after a restart too."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from restorebox.drills.model import Drill
from restorebox.models import Sandbox, Snapshot, Status

if TYPE_CHECKING:
    from restorebox.drills.runner import DrillRunner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _StateCollector(Collector):
    def __init__(
        self,
        sandboxes: Callable[[], Iterable[Sandbox]],
        snapshots: Callable[[], Iterable[Snapshot]],
        footprint: Callable[[list[Snapshot]], int],
    ) -> None:
        self.sandboxes = sandboxes
        self.snapshots = snapshots
        self.footprint = footprint

    def collect(self) -> Iterable[Metric]:
        live = list(self.sandboxes())
        by_status = Tally(s.status.value for s in live if not s.hot)
        gauge = GaugeMetricFamily(
            "restorebox_sandboxes", "Live sandboxes by status", labels=["status"]
        )
        for status in Status:
            if not status.final:
                gauge.add_metric([status.value], by_status.get(status.value, 0))
        yield gauge
        yield GaugeMetricFamily(
            "restorebox_hot_copies",
            "Copies started ahead, waiting for a create (RESTOREBOX_HOT_COPIES)",
            value=sum(1 for s in live if s.hot and s.status == Status.READY),
        )
        snapshots = list(self.snapshots())
        yield GaugeMetricFamily(
            "restorebox_snapshot_cache_bytes",
            "Bytes held by snapshots on disk (with a store: shared blocks counted once)",
            value=self.footprint(snapshots),
        )
        yield GaugeMetricFamily(
            "restorebox_snapshots", "Snapshots in the cache", value=len(snapshots)
        )


class _DrillCollector(Collector):
    """Per series, read from the drill history and the backups folder at scrape time."""

    def __init__(self, runner: DrillRunner) -> None:
        self.runner = runner

    def collect(self) -> Iterable[Metric]:
        now = datetime.now(UTC)
        success = GaugeMetricFamily(
            "restorebox_drill_last_success_timestamp_seconds",
            "When the series' newest drill that did not fail finished",
            labels=["series"],
        )
        findings = GaugeMetricFamily(
            "restorebox_drill_findings",
            "Findings of the series' latest drill (ignored ones aside), by severity",
            labels=["series", "severity"],
        )
        age = GaugeMetricFamily(
            "restorebox_backup_age_seconds",
            "Age of the series' newest backup",
            labels=["series"],
        )
        stale = GaugeMetricFamily(
            "restorebox_series_stale",
            "1 when the series got no backup within its expected interval",
            labels=["series"],
        )
        store = self.runner.store
        for series in self.runner.series().values():
            name = series.name
            newest = series.newest
            if newest is not None:
                age.add_metric([name], (now - newest[1]).total_seconds())
            stale.add_metric([name], 1.0 if series.stale(now) else 0.0)
            drills = store.of_series(name, 50)
            latest = next((d for d in drills if d.status == "done"), None)
            by_severity = (
                Tally(f.severity for f in latest.findings if not f.ignored) if latest else Tally()
            )
            for severity in ("info", "warn", "fail"):
                findings.add_metric([name, severity], by_severity.get(severity, 0))
            good = next(
                (d for d in drills if d.verdict in ("pass", "warn") and d.finished_at), None
            )
            if good is not None and good.finished_at is not None:
                success.add_metric([name], good.finished_at.timestamp())
        yield from (success, findings, age, stale)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.creates = Counter(
            "restorebox_sandbox_creates", "Sandboxes requested", ["source"], registry=r
        )
        self.failures = Counter(
            "restorebox_sandbox_failures", "Sandboxes failed, by error code", ["reason"], registry=r
        )
        self.verdicts = Counter(
            "restorebox_verdicts", "Verdicts given to ready sandboxes", ["verdict"], registry=r
        )
        self.expiries = Counter("restorebox_expiries", "Sandboxes expired", registry=r)
        self.deletes = Counter("restorebox_deletes", "Sandboxes deleted", registry=r)
        self.restore_seconds = Histogram(
            "restorebox_restore_duration_seconds",
            "Time to restore the backups (restores, not copies)",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.probe_seconds = Histogram(
            "restorebox_probe_duration_seconds",
            "Time to run a sandbox's probes",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.restored_bytes = Counter(
            "restorebox_restored_bytes", "Backup bytes restored", registry=r
        )
        self.repairs = Counter(
            "restorebox_reconciliation_repairs",
            "What reconciliation fixed (failed sandboxes, removed leftovers)",
            ["action"],
            registry=r,
        )
        self.engine_errors = Counter(
            "restorebox_engine_errors", "Container engine did not answer", registry=r
        )
        self.cache_hits = Counter(
            "restorebox_snapshot_cache_hits", "Creates served from a snapshot", registry=r
        )
        self.drill_seconds = Histogram(
            "restorebox_drill_duration_seconds",
            "Time a drill took: restore, probes, comparison",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.cache_misses = Counter(
            "restorebox_snapshot_cache_misses",
            "Creates that restored (no snapshot, or fresh)",
            registry=r,
        )

    def watch_state(
        self,
        sandboxes: Callable[[], Iterable[Sandbox]],
        snapshots: Callable[[], Iterable[Snapshot]],
        footprint: Callable[[list[Snapshot]], int] | None = None,
    ) -> None:
        footprint = footprint or (lambda snapshots: sum(s.size_bytes for s in snapshots))
        self.registry.register(_StateCollector(sandboxes, snapshots, footprint))

    def watch_drills(self, runner: DrillRunner) -> None:
        self.registry.register(_DrillCollector(runner))

    def observe_drill(self, drill: Drill) -> None:
        if drill.started_at and drill.finished_at:
            self.drill_seconds.observe((drill.finished_at - drill.started_at).total_seconds())

    def observe(self, before: Sandbox, after: Sandbox) -> None:
        """A sandbox record changed (the state machine's listener)."""
        if before.status == after.status:
            return
        if after.status == Status.FAILED:
            reason = (after.error.code if after.error else None) or "unknown"
            self.failures.labels(reason).inc()
            if reason == "engine_unavailable":
                self.engine_errors.inc()
        elif after.status == Status.EXPIRED:
            self.expiries.inc()
        elif after.status == Status.DELETED:
            self.deletes.inc()
        elif after.status == Status.READY and before.status != Status.RESETTING:
            if after.verdict:
                self.verdicts.labels(after.verdict).inc()
            if after.restore is not None and not after.from_snapshot:
                self.restore_seconds.observe(after.restore.duration_seconds)
                self.restored_bytes.inc(sum(step.bytes for step in after.restore.steps))
            if after.probes and not after.from_snapshot:
                self.probe_seconds.observe(sum(p.duration_seconds for p in after.probes))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
