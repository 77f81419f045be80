"""Sandbox lifecycle use-cases: create (and provision in the background), read, extend,
delete, expire and reconcile with the engine. Nothing here knows HTTP."""

from __future__ import annotations

import logging
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from .backups import Catalog
from .backups.model import Backup
from .errors import (
    Cancelled,
    ContainerVanished,
    EngineUnavailable,
    InvalidRequest,
    RestoreboxError,
    SandboxConflict,
    SandboxFailed,
    TooManySandboxes,
)
from .models import Assertion, ErrorInfo, Progress, Sandbox, Status, utcnow
from .probes import run_probes
from .readiness import wait_until_ready
from .restore.plan import RestorePlan, make_plan
from .restore.runner import RestoreRunner
from .runtime import ContainerSpec, Runtime
from .runtime import labels as L
from .settings import Settings
from .store import LIVE, Store

log = logging.getLogger("restorebox.sandboxes")

SANDBOX_USER = "restorebox"


@dataclass
class CreateRequest:
    ttl_seconds: int | None = None
    postgres: int | None = None
    backups: list[str] = field(default_factory=list)
    database: str | None = None
    on_error: Literal["stop", "continue"] = "stop"
    probes: list[str] | None = None
    assertions: list[Assertion] = field(default_factory=list)
    keep_on_failure: bool = False


def database_name_for(backups: list[str]) -> str:
    """'dumps/App_Data-2025.sql.gz' -> 'app_data_2025'; no backup -> 'sandbox'."""
    if not backups:
        return "sandbox"
    stem = backups[0].rsplit("/", 1)[-1]
    stem = re.sub(
        r"(\.(sql|dump|backup|bak|tar|pgdump|custom|dir|gz|zst|lz4|pgsql))+$",
        "",
        stem,
        flags=re.IGNORECASE,
    )
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")[:63]
    if not name or not name[0].isalpha():
        name = f"db_{name}"[:63]
    return name if name not in ("postgres", "template0", "template1") else f"{name}_copy"


class SandboxManager:
    def __init__(
        self, settings: Settings, store: Store, runtime: Runtime, catalog: Catalog, instance: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.catalog = catalog
        self.instance = instance
        self._lock = threading.RLock()
        self._cancel: dict[str, threading.Event] = {}
        self._done: dict[str, threading.Event] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="provision"
        )
        self._closing = False

    # -- create -------------------------------------------------------------------
    def create(self, request: CreateRequest) -> Sandbox:
        """Validate, record and start provisioning. Bad input raises before anything runs."""
        ttl = request.ttl_seconds or self.settings.default_ttl_seconds
        if ttl > self.settings.max_ttl_seconds:
            raise InvalidRequest(
                f"ttl_seconds {ttl} is over the maximum of {self.settings.max_ttl_seconds}"
            )
        if request.database is not None and not re.fullmatch(
            r"[A-Za-z_][A-Za-z0-9_]{0,62}", request.database
        ):
            raise InvalidRequest(
                "database must be 1-63 letters, digits or _, not starting with a digit"
            )
        if len(request.backups) > 20:
            raise InvalidRequest("at most 20 backups can be restored into one sandbox")
        backups: list[Backup] = [self.catalog.get(name) for name in request.backups]
        plan = make_plan(
            backups, self.settings.majors, request.postgres, self.settings.default_major()
        )
        now = utcnow()
        sandbox = Sandbox(
            id=secrets.token_hex(6),
            status=Status.CREATING,
            postgres_version=plan.major,
            image=self.settings.images[plan.major],
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
            user=SANDBOX_USER,
            password=secrets.token_urlsafe(24),
            database=request.database or database_name_for(request.backups),
            host=self.settings.connect_host,
            url_host=self.settings.connection_url_host,
            backups=list(request.backups),
            on_error=request.on_error,
            probes_requested=request.probes,
            assertions=request.assertions,
            keep_on_failure=request.keep_on_failure,
            progress=Progress(phase="queued"),
        )
        if self._closing:
            raise EngineUnavailable("the service is shutting down")
        if not self.store.insert_if_below(sandbox, self.settings.max_sandboxes):
            raise TooManySandboxes(
                f"{self.settings.max_sandboxes} sandboxes exist already (the maximum); "
                "delete one or wait for one to expire"
            )
        with self._lock:
            self._cancel[sandbox.id] = threading.Event()
            self._done[sandbox.id] = threading.Event()
        log.info(
            "sandbox requested",
            extra={"sandbox": sandbox.id, "postgres": plan.major, "backups": request.backups},
        )
        self._pool.submit(self._provision, sandbox.id, plan)
        return sandbox

    def wait(self, sandbox_id: str, timeout: float | None = None) -> Sandbox:
        with self._lock:
            done = self._done.get(sandbox_id)
        if done is not None:
            done.wait(timeout)
        return self.store.get(sandbox_id)

    # -- provisioning (worker thread) ----------------------------------------------
    def _provision(self, sandbox_id: str, plan: RestorePlan) -> None:
        cancelled = self._cancel[sandbox_id]
        try:
            sandbox = self.store.get(sandbox_id)
            self._start_container(sandbox, cancelled)
            sandbox = self.store.get(sandbox_id)
            report = None
            if plan.backups:
                sandbox = self._update(
                    sandbox_id, status=Status.RESTORING, progress=Progress(phase="restoring")
                )
                runner = RestoreRunner(
                    self.runtime,
                    sandbox,
                    timeout_seconds=self.settings.restore_timeout_seconds,
                    jobs=self.settings.restore_jobs,
                    cancelled=cancelled,
                    on_progress=lambda p: self._set_progress(sandbox_id, p),
                )
                try:
                    report = runner.run(plan, sandbox.on_error)
                except SandboxFailed as exc:
                    if "report" in exc.details:
                        self._update(sandbox_id, restore=exc.details["report"])
                    raise
                sandbox = self._update(sandbox_id, restore=report)
            if cancelled.is_set():
                raise Cancelled("the sandbox was deleted while it was being made")
            if sandbox.probes_requested != [] and (plan.backups or sandbox.assertions):
                sandbox = self._update(
                    sandbox_id, status=Status.PROBING, progress=Progress(phase="probing")
                )
                results, verdict = run_probes(
                    sandbox, plan, report, self.settings.probe_timeout_seconds
                )
                self._update(sandbox_id, probes=results, verdict=verdict)
            self._update(sandbox_id, status=Status.READY, progress=None, ready_at=utcnow())
            log.info("sandbox ready", extra={"sandbox": sandbox_id})
        except Exception as exc:
            self._fail(sandbox_id, exc, cancelled.is_set())
        finally:
            with self._lock:
                self._cancel.pop(sandbox_id, None)
                done = self._done.pop(sandbox_id, None)
            if done is not None:
                done.set()

    def _start_container(self, sandbox: Sandbox, cancelled: threading.Event) -> None:
        spec = ContainerSpec(
            image=sandbox.image,
            name=f"restorebox-{sandbox.id}",
            env={
                "POSTGRES_USER": sandbox.user,
                "POSTGRES_PASSWORD": sandbox.password,
                "POSTGRES_DB": sandbox.database,
            },
            labels=L.for_sandbox(self.instance, sandbox.id, sandbox.expires_at.isoformat()),
            publish_host=self.settings.publish_host,
            memory_bytes=self.settings.sandbox_memory_bytes,
            cpus=self.settings.sandbox_cpus,
            pids=self.settings.sandbox_pids,
        )
        container = self.runtime.start(spec)
        sandbox = self._update(
            sandbox.id,
            container_id=container.id,
            port=container.host_port,
            progress=Progress(phase="starting"),
        )
        if cancelled.is_set():
            raise Cancelled("the sandbox was deleted while it was being made")
        if container.host_port is None:
            logs = self.runtime.logs(container.id, tail=30)
            raise ContainerVanished(f"the sandbox container stopped at once; its log:\n{logs}")
        wait_until_ready(self.runtime, sandbox, self.settings.ready_timeout_seconds)

    def _fail(self, sandbox_id: str, exc: Exception, cancelled: bool) -> None:
        if isinstance(exc, RestoreboxError):
            error = ErrorInfo(code=exc.code, message=exc.message)
        else:
            log.exception("provisioning crashed", extra={"sandbox": sandbox_id})
            error = ErrorInfo(code="internal", message=f"{type(exc).__name__}: {exc}")
        try:
            sandbox = self.store.get(sandbox_id)
        except RestoreboxError:
            return
        # Deleted, expired or cancelled at shutdown while this thread worked: the delete
        # owns the outcome, but a container this thread started after the delete looked
        # for it is still this thread's to remove.
        gone = cancelled or sandbox.status in (Status.DELETING, Status.DELETED, Status.EXPIRED)
        keep = not gone and (sandbox.keep_on_failure or self.settings.keep_failed)
        if not keep:
            self._remove_containers_of(sandbox)
        if gone:
            return
        self._update(
            sandbox_id,
            status=Status.FAILED,
            error=error,
            progress=None,
            **({} if keep else {"container_id": None}),
        )
        log.warning(
            "sandbox failed",
            extra={"sandbox": sandbox_id, "code": error.code, "error": error.message[:500]},
        )

    def _remove_containers_of(self, sandbox: Sandbox) -> None:
        """Remove every container of a sandbox: the recorded one and any found by label
        (a provisioning thread may have started one a moment ago)."""
        found = {c.id for c in self.runtime.list_managed({L.SANDBOX: sandbox.id})}
        for container_id in found | ({sandbox.container_id} - {None}):
            assert container_id is not None
            self._remove_container(container_id)

    # -- read / update ------------------------------------------------------------
    def get(self, sandbox_id: str) -> Sandbox:
        return self.store.get(sandbox_id)

    def list_all(self, include_gone: bool = False) -> list[Sandbox]:
        return self.store.list(None if include_gone else set(LIVE))

    def _set_progress(self, sandbox_id: str, progress: Progress) -> None:
        self._update(sandbox_id, progress=progress)

    def _update(self, sandbox_id: str, **changes: object) -> Sandbox:
        """Read-modify-write under the lock; never resurrects a deleted sandbox."""
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            status = changes.get("status")
            if sandbox.status.final and status is not None and status != sandbox.status:
                return sandbox
            if (
                sandbox.status == Status.FAILED
                and isinstance(status, Status)
                and not (status.final or status == Status.DELETING)
            ):
                return sandbox  # cancelled underneath a provisioning thread: stays failed
            if (
                sandbox.status == Status.DELETING
                and isinstance(status, Status)
                and not status.final
            ):
                changes.pop("status", None)  # a delete in progress wins over provisioning
            updated = sandbox.model_copy(update={**changes, "updated_at": utcnow()})
            self.store.put(updated)
            return updated

    def patch(self, sandbox_id: str, ttl_seconds: int | None, protected: bool | None) -> Sandbox:
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            if sandbox.status.final or sandbox.status == Status.DELETING:
                raise SandboxConflict(f"sandbox {sandbox_id} is {sandbox.status.value}")
            changes: dict[str, object] = {}
            if ttl_seconds is not None:
                if ttl_seconds > self.settings.max_ttl_seconds:
                    raise InvalidRequest(
                        f"ttl_seconds {ttl_seconds} is over the maximum of "
                        f"{self.settings.max_ttl_seconds}"
                    )
                changes["expires_at"] = utcnow() + timedelta(seconds=ttl_seconds)
            if protected is not None:
                changes["protected"] = protected
            return self._update(sandbox_id, **changes)

    # -- delete / expire ------------------------------------------------------------
    def delete(self, sandbox_id: str, final: Status = Status.DELETED) -> Sandbox:
        with self._lock:
            sandbox = self.store.get(sandbox_id)
            if sandbox.status.final:
                return sandbox
            cancel = self._cancel.get(sandbox_id)
            if cancel is not None:
                cancel.set()
            sandbox = self._update(sandbox_id, status=Status.DELETING)
        self._remove_containers_of(sandbox)
        log.info("sandbox removed", extra={"sandbox": sandbox_id, "status": final.value})
        return self._update(sandbox_id, status=final, progress=None, container_id=None)

    def _remove_container(self, container_id: str) -> None:
        try:
            self.runtime.remove(container_id)
        except Exception:
            log.exception("could not remove container", extra={"container": container_id})
            raise

    def expire_due(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        expired = []
        for sandbox in self.store.list(set(LIVE)):
            if sandbox.status == Status.DELETING or sandbox.protected:
                continue
            if sandbox.expires_at <= now:
                self.delete(sandbox.id, final=Status.EXPIRED)
                expired.append(sandbox.id)
        return expired

    # -- reconciliation -------------------------------------------------------------
    def reconcile(self, at_start: bool = False) -> dict[str, list[str]]:
        """Make state and engine agree. At start, in-progress sandboxes were interrupted."""
        outcome: dict[str, list[str]] = {"removed": [], "failed": []}
        containers = self.runtime.list_managed({L.MANAGED: "true", L.INSTANCE: self.instance})
        by_sandbox = {c.labels.get(L.SANDBOX, ""): c for c in containers}
        # Deleted and expired sandboxes are not loaded: a container of theirs is a stranger.
        known = {s.id: s for s in self.store.list(set(LIVE))}
        with self._lock:
            active = set(self._cancel)
        for container in containers:
            sid = container.labels.get(L.SANDBOX, "")
            sandbox = known.get(sid)
            if sid in active:
                continue
            if (
                sandbox is None
                or sandbox.status.final
                or (sandbox.status == Status.FAILED and sandbox.container_id != container.id)
            ):
                self.runtime.remove(container.id)
                outcome["removed"].append(container.id[:12])
        for sandbox in known.values():
            if sandbox.id in active or sandbox.status.final:
                continue
            if sandbox.status == Status.DELETING:
                self.delete(sandbox.id)
                continue
            if sandbox.status.in_progress and at_start:
                found = by_sandbox.get(sandbox.id)
                container_id = found.id if found else sandbox.container_id
                if container_id:
                    self._remove_container(container_id)
                self._update(
                    sandbox.id,
                    status=Status.FAILED,
                    container_id=None,
                    progress=None,
                    error=ErrorInfo(
                        code="interrupted",
                        message=("the service stopped while this sandbox was being made"),
                    ),
                )
                outcome["failed"].append(sandbox.id)
            elif sandbox.status == Status.READY:
                mine = by_sandbox.get(sandbox.id)
                if mine is None or not mine.running:
                    if mine is not None:
                        self.runtime.remove(mine.id)
                    self._update(
                        sandbox.id,
                        status=Status.FAILED,
                        container_id=None,
                        error=ErrorInfo(
                            code="container_vanished",
                            message=(
                                "the sandbox's container was removed or stopped outside restorebox"
                            ),
                        ),
                    )
                    outcome["failed"].append(sandbox.id)
        live = active | {s.id for s in known.values() if not s.status.final}
        for network in self.runtime.list_networks({L.MANAGED: "true", L.INSTANCE: self.instance}):
            if network.containers == 0 and network.labels.get(L.SANDBOX) not in live:
                self.runtime.remove_network(network.id)
                outcome["removed"].append(network.name)
        if outcome["removed"] or outcome["failed"]:
            log.info("reconciled", extra=outcome)
        return outcome

    # -- shutdown ---------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop in-flight provisioning (containers removed, sandboxes marked failed);
        ready sandboxes keep running and are picked up by the next start."""
        self._closing = True
        with self._lock:
            in_flight = list(self._cancel.items())
        for sandbox_id, cancel in in_flight:
            cancel.set()
            try:
                self._remove_containers_of(self.store.get(sandbox_id))
                self._update(
                    sandbox_id,
                    status=Status.FAILED,
                    container_id=None,
                    progress=None,
                    error=ErrorInfo(
                        code="cancelled",
                        message="the service shut down while this sandbox was being made",
                    ),
                )
                log.info("in-flight sandbox cancelled at shutdown", extra={"sandbox": sandbox_id})
            except Exception:
                log.exception("cleanup at shutdown failed", extra={"sandbox": sandbox_id})
        self._pool.shutdown(wait=True, cancel_futures=True)
