"""The provisioning pipeline: for one recorded sandbox, on a worker thread, inspect its
backups (when not known yet), start its container, restore, probe, and make it ready.

A failure is recorded first and cleaned up after, best effort: whatever cleanup cannot
do now, the reconciler retries (it sees a failed sandbox still holding a container)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from restorebox.auth.scram import scram_sha256_verifier
from restorebox.backups import Catalog
from restorebox.errors import (
    Cancelled,
    ContainerVanished,
    DiskLimitExceeded,
    MaskingFailed,
    RestoreboxError,
    SandboxFailed,
)
from restorebox.lifecycle.image_builds import BUILDS_DIR, ImageBuilds
from restorebox.lifecycle.readiness import wait_until_ready
from restorebox.lifecycle.records import DRILLS_OWNER
from restorebox.lifecycle.transitions import Transitions
from restorebox.masking.apply import Masker
from restorebox.masking.evidence import Samples
from restorebox.masking.key import MaskingKey
from restorebox.masking.model import Leak, MaskingReport
from restorebox.masking.policy import resolve_for_plan
from restorebox.masking.redact import redacted
from restorebox.masking.search import files_holding
from restorebox.models import ErrorInfo, Progress, Sandbox, Snapshot, Status, utcnow
from restorebox.notify.metrics import Metrics
from restorebox.probes import run_probes
from restorebox.restore.extensions import check_extensions, follow_extensions
from restorebox.restore.plan import RestorePlan, database_for, make_plan
from restorebox.restore.runner import RestoreRunner
from restorebox.runtime import ContainerSpec, Runtime
from restorebox.runtime import labels as L
from restorebox.settings import Settings
from restorebox.snapshots.cache import SnapshotCache

log = logging.getLogger("restorebox.lifecycle.provisioning")

PASSWORD_FILE = "/run/secrets/restorebox/password"  # noqa: S105 -- a path, not a password
# A copy's own password, as a verifier (the snapshot's configuration has it blanked).
NEW_VERIFIER_ENV = "RESTOREBOX_NEW_PASSWORD_VERIFIER"


@dataclass
class Worker:
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


def spec_for(
    sandbox: Sandbox,
    settings: Settings,
    instance: str,
    snapshot: Snapshot | None = None,
    replaces: Sandbox | None = None,
) -> ContainerSpec:
    """The container of a sandbox: from its image, or a copy of a snapshot (whose own
    password is replaced before any login). The password itself never enters a container:
    the server is given its SCRAM verifier (which PostgreSQL stores as it is), in a file
    the entrypoint deletes once the role holds it, or for a copy in its environment. A
    superuser in a copy can read the files and environment of its snapshot, so nothing
    there may log into anything (docs/decisions.md, "Principals and secrets")."""
    image = snapshot.image if snapshot is not None else sandbox.image
    assert image is not None
    env = {"POSTGRES_USER": sandbox.user, "POSTGRES_DB": sandbox.initial_database}
    secret_files = {}
    # Salted per sandbox, not at random: a reset's spec is then the same as the one
    # prepared for it ahead (runtime.prepare).
    salt = hashlib.sha256(f"restorebox:{sandbox.id}".encode()).digest()[:16]
    verifier = scram_sha256_verifier(sandbox.password, salt=salt)
    if snapshot is not None:  # the image's entrypoint sets it before any TCP login
        env[NEW_VERIFIER_ENV] = verifier
    else:  # as official postgres images take it (platform images among them)
        env["POSTGRES_PASSWORD_FILE"] = PASSWORD_FILE
        secret_files[PASSWORD_FILE] = verifier.encode()
    return ContainerSpec(
        image=image,
        name=f"restorebox-{sandbox.id}",
        env=env,
        replaces=replaces.container_id if replaces is not None else None,
        host_port=replaces.port if replaces is not None else None,
        labels=L.for_sandbox(
            instance, sandbox.id, sandbox.expires_at.isoformat(), L.home(settings.state_dir)
        ),
        publish_host=settings.publish_host,
        memory_bytes=settings.sandbox_memory_bytes,
        cpus=settings.sandbox_cpus,
        pids=settings.sandbox_pids,
        secret_files=secret_files,
    )


class Provisioner:
    def __init__(
        self,
        settings: Settings,
        transitions: Transitions,
        runtime: Runtime,
        catalog: Catalog,
        instance: str,
        cache: SnapshotCache,
        metrics: Metrics,
        masking_key: MaskingKey,
    ) -> None:
        self.masking_key = masking_key
        self.cache = cache
        self.metrics = metrics
        self.settings = settings
        self.transitions = transitions
        self.runtime = runtime
        self.catalog = catalog
        self.instance = instance
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        # Every sandbox being made has a thread (copies and resets take a second and never
        # queue behind restores); at most ``workers`` restores run at once.
        self._pool = ThreadPoolExecutor(
            max_workers=max(settings.workers, settings.max_sandboxes),
            thread_name_prefix="provision",
        )
        self._restore_slots = threading.BoundedSemaphore(settings.workers)
        self.image_builds = ImageBuilds(settings.state_dir / BUILDS_DIR, runtime)

    # -- workers ------------------------------------------------------------------
    def register(self, sandbox_id: str) -> None:
        """Claim a sandbox before it is recorded, so the reconciler never takes a sandbox
        that is about to be provisioned for an interrupted one."""
        with self._lock:
            self._workers[sandbox_id] = Worker()

    def unregister(self, sandbox_id: str) -> None:
        with self._lock:
            worker = self._workers.pop(sandbox_id, None)
        if worker is not None:
            worker.done.set()

    def submit(self, sandbox_id: str, plan: RestorePlan | None) -> None:
        future = self._pool.submit(self._run, sandbox_id, plan)
        future.add_done_callback(_log_crash)

    def active(self) -> set[str]:
        with self._lock:
            return set(self._workers)

    def cancel(self, sandbox_id: str) -> bool:
        with self._lock:
            worker = self._workers.get(sandbox_id)
        if worker is not None:
            worker.cancelled.set()
        return worker is not None

    def done_event(self, sandbox_id: str) -> threading.Event | None:
        with self._lock:
            worker = self._workers.get(sandbox_id)
        return worker.done if worker is not None else None

    def shutdown(self) -> None:
        """Cancel every worker: each records its sandbox as failed (``cancelled``) and
        removes its container on its way out."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.cancelled.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            leftover = list(self._workers)
        for sandbox_id in leftover:  # queued, never started
            self.fail(sandbox_id, Cancelled("the service shut down before this sandbox began"))
            self.unregister(sandbox_id)

    # -- the pipeline (worker thread) -------------------------------------------------
    def _run(self, sandbox_id: str, plan: RestorePlan | None) -> None:
        with self._lock:
            worker = self._workers[sandbox_id]
        cancelled = worker.cancelled
        made = False
        try:
            sandbox = self.transitions.get(sandbox_id)
            if plan is None:
                plan = self._inspect_and_plan(sandbox)
                sandbox = self.transitions.get(sandbox_id)
            self._check(cancelled)
            if sandbox.image is not None and not sandbox.from_snapshot:
                self._wait_for_image(sandbox_id, sandbox.image, cancelled)
                self.check_extensions(plan, sandbox.on_error)  # now that the image is there
            masking_warnings: list[str] = []
            if not sandbox.from_snapshot and plan.backups:  # before the cache key: it counts
                policy, masking_warnings = resolve_for_plan(
                    sandbox.masking_requested, plan, self.settings.backups_dir
                )
                sandbox = self.transitions.update(sandbox_id, masking_policy=policy)
            key = None if sandbox.from_snapshot else self.cache.key_for(sandbox, plan.backups)
            snapshot = self._snapshot_to_copy(sandbox, key)
            if key is not None:
                (self.metrics.cache_hits if snapshot else self.metrics.cache_misses).inc()
            if snapshot is not None:
                self._copy(sandbox_id, snapshot, cancelled)
                made = True
                return
            # Drills are limited by their own workers (RESTOREBOX_DRILL_WORKERS): they never
            # hold a slot an interactive create waits for.
            drill = sandbox.owner == DRILLS_OWNER
            slot = contextlib.nullcontext() if drill else self._restore_slot(sandbox_id, cancelled)
            with slot:
                keeping = key is not None and sandbox.keep_snapshot
                self._restore_and_probe(
                    sandbox_id, plan, cancelled, vacuum=keeping, warnings=masking_warnings
                )
                if key is not None and keeping:
                    self._keep(sandbox_id, key, plan)
            self._check(cancelled)
            self.transitions.move(sandbox_id, Status.READY, progress=None, ready_at=utcnow())
            log.info("sandbox ready", extra={"sandbox": sandbox_id})
            made = True
            if keeping:
                self.cache.evict_quietly()  # after the hand-out: removing images is slow
        except Exception as exc:
            if cancelled.is_set() and not isinstance(exc, Cancelled):
                exc = Cancelled("the sandbox was cancelled while it was being made")
            self.fail(sandbox_id, exc)
        finally:
            self.unregister(sandbox_id)
            if made:
                self.prepare_reset(sandbox_id)

    def _wait_for_image(self, sandbox_id: str, image: str, cancelled: threading.Event) -> None:
        """An image scripts/serve is still building is waited for (lifecycle/image_builds),
        before a restore slot is taken: other sandboxes go on meanwhile."""
        phase = f"waiting for image {image} (being built)"
        self.image_builds.wait(
            image, lambda: self._progress(sandbox_id, Progress(phase=phase)), cancelled
        )

    @contextlib.contextmanager
    def _restore_slot(self, sandbox_id: str, cancelled: threading.Event) -> Iterator[None]:
        if not self._restore_slots.acquire(blocking=False):
            self._progress(sandbox_id, Progress(phase="waiting for a restore slot"))
            while not self._restore_slots.acquire(timeout=0.5):
                self._check(cancelled)
        try:
            yield
        finally:
            self._restore_slots.release()

    def _restore_and_probe(
        self,
        sandbox_id: str,
        plan: RestorePlan,
        cancelled: threading.Event,
        vacuum: bool,
        warnings: list[str] | None = None,
    ) -> None:
        self._start(sandbox_id, cancelled)
        sandbox = self.transitions.get(sandbox_id)
        masked = sandbox.masking_policy is not None
        report = None
        samples = None
        if plan.backups:
            sandbox = self.transitions.move(
                sandbox_id, Status.RESTORING, progress=Progress(phase="restoring")
            )
            runner = RestoreRunner(
                self.runtime,
                sandbox,
                timeout_seconds=self.settings.restore_timeout_seconds,
                jobs=self.settings.restore_jobs or max(1, math.ceil(self.settings.sandbox_cpus)),
                cancelled=cancelled,
                on_progress=lambda p: self._progress(sandbox_id, p),
                members=self.catalog.members,
                disk_limit=self.settings.sandbox_disk_bytes,
                vacuum=vacuum,
            )
            try:
                report = runner.run(plan, sandbox.on_error)
            except SandboxFailed as exc:
                if "report" in exc.details:
                    failed = exc.details["report"]
                    self.transitions.update(
                        sandbox_id, restore=redacted(failed) if masked else failed
                    )
                raise
            report.warnings += warnings or []
            if masked:
                report = redacted(report)
            sandbox = self.transitions.update(sandbox_id, restore=report)
        self._check(cancelled)
        if masked:
            samples = self._mask(sandbox, cancelled)
            sandbox = self.transitions.get(sandbox_id)
        # A masked sandbox is searched for leaks even when no probe is asked for.
        wanted = sandbox.probes_requested != [] or samples is not None
        if wanted and (plan.backups or sandbox.assertions):
            sandbox = self.transitions.move(
                sandbox_id, Status.PROBING, progress=Progress(phase="probing")
            )
            results, verdict = run_probes(
                sandbox, plan, report, self.settings.probe_timeout_seconds, masking=samples
            )
            self.transitions.update(sandbox_id, probes=results, verdict=verdict)
            leaks = next((r for r in results if r.name == "masking_leaks"), None)
            if leaks is not None and sandbox.masking is not None:
                masking = sandbox.masking.model_copy(deep=True)
                masking.leaks = [Leak.model_validate(x) for x in leaks.data.get("leaks", [])]
                self.transitions.update(sandbox_id, masking=masking)

    def _mask(self, sandbox: Sandbox, cancelled: threading.Event) -> Samples:
        """Mask the restored database in place (masking/apply); the sandbox fails, and
        its container goes, if that fails: nobody gets it unmasked."""
        assert sandbox.masking_policy is not None
        assert sandbox.container_id is not None
        self.transitions.update(sandbox.id, progress=Progress(phase="masking"))
        masker = Masker(
            sandbox,
            sandbox.masking_policy,
            self.masking_key,
            workers=self.settings.masking_workers,
            on_progress=lambda p: self._progress(sandbox.id, p),
            cancelled=cancelled,
        )
        try:
            report, samples = masker.run()
        except SandboxFailed as exc:  # strict: what the scan found, on the failed sandbox
            if isinstance(exc.details.get("masking"), MaskingReport):
                self.transitions.update(sandbox.id, masking=exc.details["masking"])
            raise
        container_id = sandbox.container_id
        samples.search_files = lambda values: files_holding(self.runtime, container_id, values)
        self.transitions.update(sandbox.id, masking=report)
        return samples

    def _snapshot_to_copy(self, sandbox: Sandbox, key: str | None) -> Snapshot | None:
        if sandbox.from_snapshot and sandbox.snapshot_id:
            return self.cache.store.get(sandbox.snapshot_id)
        if key is None or sandbox.fresh:
            return None
        return self.cache.find(key)

    def _copy(self, sandbox_id: str, snapshot: Snapshot, cancelled: threading.Event) -> None:
        """A sandbox from a snapshot: a new container and port, fresh credentials, and the
        snapshot's report and probe results, marked as coming from it."""
        self.transitions.update(
            sandbox_id,
            snapshot_id=snapshot.id,
            from_snapshot=True,
            database=snapshot.database,
            creates_databases=snapshot.creates_databases,
            postgres_version=snapshot.postgres_version,
        )
        self._start(sandbox_id, cancelled, snapshot=snapshot)
        self.cache.store.touch(snapshot)
        restore = snapshot.restore.model_copy() if snapshot.restore else None
        if restore is not None:
            restore.warnings = [
                f"copied from snapshot {snapshot.id} of {snapshot.created_at.isoformat()}"
                " (restore report and probe results are the snapshot's)",
                *restore.warnings,
            ]
        self._check(cancelled)
        self.transitions.move(
            sandbox_id,
            Status.READY,
            progress=None,
            ready_at=utcnow(),
            restore=restore,
            probes=snapshot.probes,
            verdict=snapshot.verdict,
            masking=snapshot.masking,
        )
        log.info("sandbox ready (copy)", extra={"sandbox": sandbox_id, "snapshot": snapshot.id})

    def _keep(self, sandbox_id: str, key: str, plan: RestorePlan) -> None:
        """Keep the restored state before anyone connects: the first sandbox waits for the
        snapshot exactly as long as taking it takes (a checkpoint, then a clone of its frozen
        data directory in the store, or a paused commit on the overlay path)."""
        sandbox = self.transitions.update(sandbox_id, progress=Progress(phase="snapshotting"))
        try:
            snapshot = self.cache.take(sandbox, key=key, backups=plan.backups)
        except RestoreboxError as exc:
            # The sandbox is as good as it was: ready, with a warning (no copies or resets
            # from it; the next create restores again).
            log.warning("snapshot not taken", extra={"sandbox": sandbox_id, "error": exc.message})
            if sandbox.restore is not None:
                restore = sandbox.restore.model_copy(deep=True)
                restore.warnings.append(
                    f"no snapshot was kept ({exc.code}: {exc.message}); copies and resets of "
                    "this restore are not available"
                )
                self.transitions.update(sandbox_id, restore=restore)
            return
        self.transitions.update(sandbox_id, snapshot_id=snapshot.id)

    def reset(self, sandbox_id: str) -> None:
        """Back to the sandbox's snapshot, on the same port with the same password."""
        with self._lock:
            worker = self._workers[sandbox_id]
        made = False
        try:
            sandbox = self.transitions.get(sandbox_id)
            assert sandbox.snapshot_id is not None
            snapshot = self.cache.store.get(sandbox.snapshot_id)
            # A new container takes over the old one's endpoint (the same port) with the
            # same password: the URL is kept. The old one stops at once.
            self._start(sandbox_id, worker.cancelled, snapshot=snapshot, replaces=sandbox)
            self.cache.store.touch(snapshot)
            self.transitions.move(sandbox_id, Status.READY, progress=None)
            log.info("sandbox reset", extra={"sandbox": sandbox_id, "snapshot": snapshot.id})
            made = True
        except Exception as exc:
            self.fail(sandbox_id, exc)
        finally:
            self.unregister(sandbox_id)
            if made:
                self.prepare_reset(sandbox_id)

    def prepare_reset(self, sandbox_id: str) -> None:
        """Let the runtime make the sandbox's next reset container ahead (it returns at
        once; the work waits for a quiet moment). Only a head start: never an error. A
        hot copy gets one once it is claimed (most are never reset)."""
        try:
            sandbox = self.transitions.get(sandbox_id)
            if sandbox.status != Status.READY or not sandbox.snapshot_id or sandbox.hot:
                return
            snapshot = self.cache.store.get(sandbox.snapshot_id)
            spec = spec_for(sandbox, self.settings, self.instance, snapshot, replaces=sandbox)
            self.runtime.prepare(spec)
        except Exception:
            log.debug("no reset prepared", exc_info=True, extra={"sandbox": sandbox_id})

    def prepare_reset_later(self, sandbox_id: str) -> None:
        """``prepare_reset`` on a worker thread (its password verifier costs milliseconds
        a request need not wait for). Skipped once the service is shutting down."""
        with contextlib.suppress(RuntimeError):  # the pool is shut down
            self._pool.submit(self.prepare_reset, sandbox_id)

    def submit_reset(self, sandbox_id: str) -> None:
        future = self._pool.submit(self.reset, sandbox_id)
        future.add_done_callback(_log_crash)

    def _progress(self, sandbox_id: str, progress: Progress) -> None:
        self.transitions.update(sandbox_id, progress=progress)

    def _inspect_and_plan(self, sandbox: Sandbox) -> RestorePlan:
        self.transitions.update(sandbox.id, progress=Progress(phase="inspecting"))
        backups = [self.catalog.get(name) for name in sandbox.backups]
        plan = make_plan(
            backups,
            self.settings.majors,
            sandbox.postgres_version,
            self.settings.default_major(),
            sandbox.profile_requested,
        )
        plan = self.follow_extensions(plan, sandbox.postgres_version)
        database = database_for(plan, sandbox.database_requested)
        image, platform_image = self.settings.image_for(
            plan.major, plan.profile.name if plan.profile else None
        )
        self.transitions.update(
            sandbox.id,
            postgres_version=plan.major,
            image=image,
            platform_image=platform_image,
            **({"database": database, "creates_databases": True} if database else {}),
        )
        return plan

    def follow_extensions(self, plan: RestorePlan, requested: int | None) -> RestorePlan:
        """The plan on a newer major when only a newer image has the backups' extensions
        (see restore/extensions)."""
        profile = plan.profile.name if plan.profile else None

        def labels_of(major: int) -> tuple[str, dict[str, str]]:
            image, _ = self.settings.image_for(major, profile)
            return image, self.runtime.image_labels(image)

        return follow_extensions(plan, self.settings.majors, requested, labels_of)

    def check_extensions(self, plan: RestorePlan, on_error: str) -> None:
        """Refuse a plan whose backups need an extension its image lacks (see
        restore/extensions), before any container starts."""
        image, _ = self.settings.image_for(plan.major, plan.profile.name if plan.profile else None)
        if plan.backups:
            check_extensions(plan, image, self.runtime.image_labels(image), on_error)

    def _start(
        self,
        sandbox_id: str,
        cancelled: threading.Event,
        snapshot: Snapshot | None = None,
        replaces: Sandbox | None = None,
    ) -> None:
        sandbox = self.transitions.update(sandbox_id, progress=Progress(phase="starting"))
        spec = spec_for(sandbox, self.settings, self.instance, snapshot, replaces)
        container = self.runtime.start(spec)
        endpoint = container.endpoint
        sandbox = self.transitions.update(
            sandbox_id,
            container_id=container.id,
            host=endpoint.host if endpoint else sandbox.host,
            port=endpoint.port if endpoint else None,
        )
        self._check(cancelled)
        if endpoint is None:
            logs = self.runtime.logs(container.id, tail=30)
            raise ContainerVanished(f"the sandbox container stopped at once; its log:\n{logs}")
        wait_until_ready(self.runtime, sandbox, self.settings.ready_timeout_seconds)

    @staticmethod
    def _check(cancelled: threading.Event) -> None:
        if cancelled.is_set():
            raise Cancelled("the sandbox was cancelled while it was being made")

    # -- failure ------------------------------------------------------------------------
    def fail(self, sandbox_id: str, exc: Exception) -> None:
        """Record the failure, then remove the container (unless it is to be kept)."""
        if isinstance(exc, RestoreboxError):
            error = ErrorInfo(code=exc.code, message=exc.message)
        else:
            log.error("provisioning crashed", exc_info=exc, extra={"sandbox": sandbox_id})
            error = ErrorInfo(code="internal", message=f"{type(exc).__name__}: {exc}")
        try:
            sandbox = self.transitions.get(sandbox_id)
            # Never kept: a cancelled one (nobody wants it), one over its disk bound (it
            # would go on holding the disk the bound protects), a masked one (it may hold
            # the original values: masking failed, or never ran).
            keep = (
                not isinstance(exc, Cancelled | DiskLimitExceeded | MaskingFailed)
                and sandbox.masking_policy is None
                and (sandbox.keep_on_failure or self.settings.keep_failed)
            )
            sandbox = self.transitions.move(
                sandbox_id, Status.FAILED, error=error, progress=None, container_kept=keep
            )
        except RestoreboxError:
            log.exception("could not record a failure", extra={"sandbox": sandbox_id})
            return
        if sandbox.status == Status.FAILED:
            log.warning(
                "sandbox failed",
                extra={"sandbox": sandbox_id, "code": error.code, "error": error.message[:500]},
            )
            if sandbox.container_kept:
                return
        elif sandbox.status != Status.DELETING and not sandbox.status.final:
            return
        # Failed, or deleted underneath this worker: a container it started a moment ago
        # is still its to remove. Whatever fails here, the reconciler retries.
        try:
            remove_containers(self.runtime, self.instance, sandbox)
            if sandbox.status == Status.FAILED:
                self.transitions.update(sandbox_id, container_id=None)
        except Exception:
            log.exception("cleanup after failure failed; will retry", extra={"sandbox": sandbox_id})


def remove_containers(runtime: Runtime, instance: str, sandbox: Sandbox) -> None:
    """Remove every container of a sandbox: the recorded one and any found by label
    (a worker may have started one a moment ago)."""
    found = runtime.list_managed({L.INSTANCE: instance, L.SANDBOX: sandbox.id})
    ids = {c.id for c in found}
    if sandbox.container_id:
        ids.add(sandbox.container_id)
    for container_id in sorted(ids):
        runtime.remove(container_id)


def _log_crash(future: Future[None]) -> None:
    exc = future.exception() if not future.cancelled() else None
    if exc is not None:
        log.error("provisioning worker crashed", exc_info=exc)
