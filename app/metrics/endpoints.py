from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from app.db.session import Database, SessionDep
from app.metrics import service
from app.metrics.schemas import MetricPointIn, MetricPointList
from app.trials import service as trials
from app.trials.schemas import DecisionRead

router = APIRouter(tags=["metrics"])

MAX_BATCH = 10_000


@router.post("/trials/{trial_id}/metrics")
async def report(
    trial_id: int,
    points: Annotated[list[MetricPointIn], Body(max_length=MAX_BATCH)],
    request: Request,
) -> DecisionRead:
    """Store a batch of metric points and get the scheduler's decision for the trial.
    A (name, step) already stored is ignored, so re-sending a batch is safe."""
    database: Database = request.app.state.database
    # Both units of work in one worker thread, as `unit_of_work` runs one.
    return await run_in_threadpool(_report, database, trial_id, points)


def _report(database: Database, trial_id: int, points: list[MetricPointIn]) -> DecisionRead:
    # Storing a report is one statement: autocommit spares it the BEGIN and COMMIT round
    # trips, two of the three a report made.
    with database.session(autocommit=True) as session:
        reported = trials.store_metrics(session, trial_id, points)
    # A scheduler's decision, when one is due, reads the stored points in a transaction
    # of its own; most reports are answered from what the statement read, with no SQL.
    with database.session() as session:
        decision = trials.decide_after_report(session, reported)
    return DecisionRead(decision=decision.action, reason=decision.reason)


@router.get("/trials/{trial_id}/metrics")
def list_points(
    trial_id: int,
    session: SessionDep,
    name: str | None = None,
    since: Annotated[int, Query(ge=0, description="Cursor from a previous answer")] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> MetricPointList:
    return service.page(session, trial_id, name, since, limit)
