"""The FastAPI application: API under /api/v1, the dashboard at /."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI

from app.auth.dependencies import authorize
from app.auth.endpoints import router as auth_router
from app.compare.endpoints import router as compare_router
from app.core.errors import install_error_handlers
from app.core.leadership import RETRY_S as LEADER_RETRY_S
from app.core.leadership import Leadership, lock_path
from app.core.limits import BodySizeLimit
from app.db.session import Database
from app.db.types import utcnow
from app.executor import Executor
from app.executor.liveness import LivenessWatch, watch_for
from app.executor.start import start_trials
from app.followups.endpoints import router as followups_router
from app.importance.endpoints import router as importance_router
from app.live.dashboard import install_dashboard
from app.live.endpoints import router as live_router
from app.live.hub import Hub
from app.metrics.endpoints import router as metrics_router
from app.plans.endpoints import router as plans_router
from app.plots.endpoints import router as plots_router
from app.plots.service import warm_up as warm_up_plots
from app.population.endpoints import router as population_router
from app.projects.endpoints import router as projects_router
from app.scaling.endpoints import router as scaling_router
from app.settings import Settings, get_settings
from app.studies.endpoints import router as studies_router
from app.transfer.endpoints import IMPORT_OPTUNA_BYTES, IMPORT_OPTUNA_PATH, IMPORT_STREAM_PATH
from app.transfer.endpoints import router as transfer_router
from app.trials import service as trials_service
from app.trials.endpoints import router as trials_router
from app.trials.fencing import fence
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.endpoints import router as webhooks_router

log = logging.getLogger("tunelab")

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    # Routes are matched in order, walking each included router (twice: to find the
    # route, then to run it): the busiest one, metric reports, comes first.
    # Reports of a run whose trial moved on without it are refused (trials/fencing.py).
    router.include_router(metrics_router, dependencies=[Depends(fence)])
    router.include_router(studies_router)
    router.include_router(trials_router, dependencies=[Depends(fence)])
    router.include_router(plans_router)
    router.include_router(auth_router)
    router.include_router(projects_router)
    router.include_router(transfer_router)
    router.include_router(scaling_router)
    router.include_router(followups_router)
    router.include_router(importance_router)
    router.include_router(plots_router)
    router.include_router(compare_router)
    router.include_router(population_router)
    router.include_router(live_router)
    router.include_router(webhooks_router)

    @router.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return router


async def _reap_forever(
    database: Database, interval_s: float, watch: LivenessWatch | None = None
) -> None:
    """Fails or re-queues trials whose heartbeat stopped or whose worker is gone
    (executor/liveness.py), and ends studies out of time."""

    alive_since = utcnow()

    def sweep() -> int:
        with database.session() as session:
            lost = watch.sweep(session) if watch is not None else 0
            return lost + trials_service.reap_stale(session, alive_since=alive_since)

    while True:
        try:
            recovered = await to_thread.run_sync(sweep)
            if recovered:
                log.info("recovered %d trials without heartbeat", recovered)
        except Exception:  # a database hiccup must not kill the sweeper
            log.exception("heartbeat sweep failed")
            # While the database is away no report can be stored: silence until it is
            # back must not fail the trials whose runners kept their points meanwhile.
            alive_since = utcnow()
        await asyncio.sleep(interval_s)


class RunOnce:
    """The work that one process of a server runs (see core/leadership): trials, the
    heartbeat sweep, webhook deliveries and the demo. A process that does not get the
    lock waits for it."""

    def __init__(self, settings: Settings, database: Database, hub: Hub | None = None) -> None:
        self.settings = settings
        self.database = database
        self.hub = hub
        self.leadership = Leadership(lock_path(settings.data_dir, database.url))
        self.executor: Executor | None = None
        self.reaper: asyncio.Task[None] | None = None
        self.webhooks: asyncio.Task[None] | None = None
        self.waiting: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.leadership.try_acquire():
            self.executor = self._start_trials()
            self._start_reaper()
        else:
            self.waiting = asyncio.create_task(self._take_over())

    async def _take_over(self) -> None:
        while not self.leadership.try_acquire():
            await asyncio.sleep(LEADER_RETRY_S)
        log.info("this process now runs the trials and the heartbeat sweep")
        self.executor = await to_thread.run_sync(self._start_trials)
        self._start_reaper()

    def _start_trials(self) -> Executor | None:
        if not self.settings.run_trials:
            return None
        return start_trials(self.settings, self.database)

    def _start_reaper(self) -> None:
        self.reaper = asyncio.create_task(
            _reap_forever(
                self.database,
                self.settings.reaper_interval_s,
                watch_for(self.settings.broker_url),
            )
        )
        # Webhook deliveries (app/webhooks/dispatcher.py), sent by this process only.
        # With several API processes it hears their commits through the live hub.
        hub = self.hub if self.settings.workers > 1 else None
        self.webhooks = asyncio.create_task(Dispatcher(self.settings, self.database, hub).run())

    async def stop(self) -> None:
        for task in (self.waiting, self.reaper, self.webhooks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.executor is not None:
            await to_thread.run_sync(self.executor.stop)
        self.leadership.release()


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = database or Database(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.hub.start()
        threading.Thread(target=warm_up_plots, name="warm-up-plots", daemon=True).start()
        run_once = RunOnce(settings, database, app.state.hub)
        run_once.start()
        try:
            yield
        finally:
            await run_once.stop()
            await app.state.hub.stop()

    app = FastAPI(
        title="Tunelab",
        version="0.1.0",
        description="Hyperparameter tuning studies, trials and strategies.",
        lifespan=lifespan,
        # Every route, present and future, is guarded; `authorize` lets /health through.
        dependencies=[Depends(authorize)],
    )
    app.state.settings = settings
    app.state.database = database
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger={
            IMPORT_STREAM_PATH: settings.max_import_bytes,
            IMPORT_OPTUNA_PATH: max(settings.max_body_bytes, IMPORT_OPTUNA_BYTES),
        },
    )
    app.include_router(api_router())
    # Live changes for SSE, fanned out through Redis when several API processes run.
    app.state.hub = Hub(settings.redis_url or settings.broker_url, database.url)
    install_dashboard(app, FRONTEND_DIST)
    return app
