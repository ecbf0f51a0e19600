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
from app.core.errors import install_error_handlers
from app.core.limits import BodySizeLimit
from app.db.session import Database
from app.db.types import utcnow
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
from app.scaling.endpoints import router as scaling_router
from app.settings import Settings, get_settings
from app.studies.endpoints import router as studies_router
from app.transfer.endpoints import IMPORT_STREAM_PATH
from app.transfer.endpoints import router as transfer_router
from app.trials import service as trials_service
from app.trials.endpoints import router as trials_router

log = logging.getLogger("tunelab")

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    # Routes are matched in order, walking each included router (twice: to find the
    # route, then to run it): the busiest one, metric reports, comes first.
    router.include_router(metrics_router)
    router.include_router(studies_router)
    router.include_router(trials_router)
    router.include_router(plans_router)
    router.include_router(auth_router)
    router.include_router(transfer_router)
    router.include_router(scaling_router)
    router.include_router(followups_router)
    router.include_router(importance_router)
    router.include_router(plots_router)
    router.include_router(live_router)

    @router.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return router


async def _reap_forever(database: Database, interval_s: float) -> None:
    """Fails or re-queues trials whose heartbeat stopped, and ends studies out of time."""

    alive_since = utcnow()

    def sweep() -> int:
        with database.session() as session:
            return trials_service.reap_stale(session, alive_since=alive_since)

    while True:
        try:
            recovered = await to_thread.run_sync(sweep)
            if recovered:
                log.info("recovered %d trials without heartbeat", recovered)
        except Exception:  # a database hiccup must not kill the sweeper
            log.exception("heartbeat sweep failed")
        await asyncio.sleep(interval_s)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = database or Database(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(_reap_forever(database, settings.reaper_interval_s))
        await app.state.hub.start()
        threading.Thread(target=warm_up_plots, name="warm-up-plots", daemon=True).start()
        executor = start_trials(settings, database) if settings.run_trials else None
        try:
            yield
        finally:
            if executor is not None:
                await to_thread.run_sync(executor.stop)
            await app.state.hub.stop()
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper

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
        larger={IMPORT_STREAM_PATH: settings.max_import_bytes},
    )
    app.include_router(api_router())
    # Live changes for SSE, fanned out through Redis when several API processes run.
    app.state.hub = Hub(settings.redis_url or settings.broker_url, database.url)
    install_dashboard(app, FRONTEND_DIST)
    return app
