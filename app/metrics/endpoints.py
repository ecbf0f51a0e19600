from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from app.db.session import Database, SessionDep
from app.metrics import service
from app.metrics.schemas import MetricPointIn, MetricPointList
from app.trials import service as trials
from app.trials.fencing import attempt_of, check_attempt
from app.trials.schemas import DecisionRead

if TYPE_CHECKING:
    from app.engine.base import Decision
    from app.metrics.repository import ReportedTrial

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
    reported = await run_in_threadpool(_store, database, trial_id, points, attempt_of(request))
    decision = trials.answer_without_decision(reported)
    if decision is None:
        # The scheduler decides under the study's row lock: in the study's turn, as asks
        # and tells take it (app/db/session.Turns).
        async with database.study_turns.turn(reported.study_id):
            decision = await run_in_threadpool(_decide, database, reported)
    return DecisionRead(decision=decision.action, reason=decision.reason)


def _store(
    database: Database, trial_id: int, points: list[MetricPointIn], attempt: int | None
) -> ReportedTrial:
    # Storing a report is one statement: autocommit spares it the BEGIN and COMMIT round
    # trips, two of the three a report made. A runner's report (it carries its attempt)
    # is checked in the same transaction, on the trial's locked row (app/trials/fencing.py).
    with database.session(autocommit=attempt is None) as session:
        check_attempt(session, trial_id, attempt)
        return trials.store_metrics(session, trial_id, points)


def _decide(database: Database, reported: ReportedTrial) -> Decision:
    # A transaction of its own: it reads the stored points, the new ones included.
    with database.session() as session:
        return trials.decide_after_report(session, reported)


@router.get("/trials/{trial_id}/metrics")
def list_points(
    trial_id: int,
    session: SessionDep,
    name: str | None = None,
    since: Annotated[int, Query(ge=0, description="Cursor from a previous answer")] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> MetricPointList:
    return service.page(session, trial_id, name, since, limit)
