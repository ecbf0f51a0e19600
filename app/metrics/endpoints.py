from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from app.db.session import Database, SessionDep
from app.metrics.repository import MetricRepository
from app.metrics.schemas import MetricPointIn, MetricPointList, MetricPointRead
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
    # One worker thread for both of its transactions, as `in_session` does for one.
    database: Database = request.app.state.database
    return await run_in_threadpool(_report, database, trial_id, points)


def _report(database: Database, trial_id: int, points: list[MetricPointIn]) -> DecisionRead:
    with database.sessions() as session:
        if not database.is_sqlite:
            # Storing a report is one statement: as a transaction of its own it needs no
            # BEGIN and COMMIT round trips, two of the three a report made.
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        reported = trials.store_metrics(session, trial_id, points)
        session.commit()
    # A scheduler's decision, when one is due, reads the stored points in a transaction
    # of its own; most reports are answered from what the statement read.
    with database.sessions() as session:
        decision = trials.decide_after_report(session, reported)
        session.commit()
    return DecisionRead(decision=decision.action, reason=decision.reason)


@router.get("/trials/{trial_id}/metrics")
def list_points(
    trial_id: int,
    session: SessionDep,
    name: str | None = None,
    since: Annotated[int, Query(ge=0, description="Cursor from a previous answer")] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> MetricPointList:
    trials.get_trial(session, trial_id)
    points = MetricRepository(session).page(trial_id, name, since, limit)
    return MetricPointList(
        items=[MetricPointRead.model_validate(p) for p in points],
        cursor=points[-1].id if points else since,
    )
