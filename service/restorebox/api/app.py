"""The application factory: wires settings, state, engine, catalog and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from restorebox import __version__
from restorebox.api import errors
from restorebox.api.deps import Services
from restorebox.api.limits import BodySizeLimit
from restorebox.api.routes import (
    backups,
    drills,
    events,
    health,
    metrics,
    sandboxes,
    snapshots,
    ui,
)
from restorebox.auth.tokens import load_or_create
from restorebox.backups import Catalog
from restorebox.drills.model import Drill
from restorebox.drills.runner import DrillRunner
from restorebox.drills.series import Series
from restorebox.drills.store import DrillStore
from restorebox.drills.watcher import Watcher
from restorebox.lifecycle.instance import instance_id
from restorebox.lifecycle.instance import template as instance_template
from restorebox.lifecycle.isolation import verify as verify_isolation
from restorebox.lifecycle.manager import SandboxManager
from restorebox.lifecycle.reaper import Reaper
from restorebox.lifecycle.store import Store
from restorebox.notify import webhooks as alarms
from restorebox.notify.webhooks import WebhookSender
from restorebox.runtime import Runtime
from restorebox.settings import Settings
from restorebox.storage.opening import open_store

log = logging.getLogger("restorebox.api")


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, *, background: bool = True
) -> FastAPI:
    """Build the app. ``background=False`` skips the reaper and start-up reconciliation
    (unit tests drive those by hand)."""
    settings = settings or Settings()
    if runtime is None:
        from restorebox.runtime.docker import DockerRuntime

        runtime = DockerRuntime()
    instance = instance_id(settings)
    runtime, store_state = open_store(settings, runtime, instance)
    template = instance_template(settings, instance)
    isolation = verify_isolation(settings, runtime, template)  # before anything is opened
    store = Store(settings.database_file)
    catalog = Catalog(
        settings.backups_dir,
        max_bytes=settings.max_backup_bytes,
        cache_file=settings.backup_cache_file,
    )
    manager = SandboxManager(settings, store, runtime, catalog, instance)
    reaper = Reaper(manager, settings.reap_interval_seconds)
    webhooks = None
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        webhooks = WebhookSender(settings.webhook_url, secret, attempts=settings.webhook_attempts)
        manager.transitions.subscribe(webhooks.observe)

    def drill_finished(drill: Drill) -> None:
        manager.metrics.observe_drill(drill)
        if webhooks is not None:
            webhooks.send(alarms.drill_finished(drill))

    def series_went_stale(series: Series) -> None:
        if webhooks is not None:
            webhooks.send(alarms.series_stale(series, datetime.now(UTC)))

    drill_store = DrillStore(settings.state_dir / "drills.sqlite3", settings.drill_retention)
    drill_runner = DrillRunner(settings, manager, catalog, drill_store, drill_finished)
    manager.metrics.watch_drills(drill_runner)
    watcher = Watcher(drill_runner, series_went_stale) if settings.drills else None
    services = Services(
        settings,
        manager,
        catalog,
        load_or_create(settings),
        isolation,
        drill_runner,
        store_state,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            runtime.warm_up(template, settings.network_pool)
            try:
                manager.reconcile(at_start=True)
                reaper.start_reconciled = True
            except Exception:
                log.exception("start-up reconciliation failed; the reaper will retry")
            reaper.start()
            if watcher is not None:
                watcher.start()
        log.info(
            "restorebox started",
            extra={
                "host": settings.host,
                "port": settings.port,
                "backups_dir": str(settings.backups_dir),
                "state_dir": str(settings.state_dir),
            },
        )
        try:
            yield
        finally:
            if background:
                reaper.stop()
            if watcher is not None:
                watcher.stop()
            drill_runner.shutdown()
            manager.shutdown()
            if background:
                runtime.cool_down(template.labels)
            if webhooks is not None:
                webhooks.close()
            catalog.close()
            store.close()

    app = FastAPI(
        title="restorebox",
        version=__version__,
        lifespan=lifespan,
        description="Disposable PostgreSQL sandboxes restored from pg_dump backups.",
    )
    app.state.services = services
    errors.install(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(backups.router)
    app.include_router(sandboxes.router)
    app.include_router(events.router)
    app.include_router(metrics.router)
    app.include_router(ui.router)
    app.include_router(snapshots.router)
    app.include_router(drills.router)
    return app
