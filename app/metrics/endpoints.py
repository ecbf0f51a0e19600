from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from app.db.session import SessionDep
from app.metrics.repository import MetricRepository
from app.metrics.schemas import MetricPointIn, MetricPointList, MetricPointRead
from app.trials import service as trials
from app.trials.schemas import DecisionRead

router = APIRouter(tags=["metrics"])

MAX_BATCH = 10_000


@router.post("/trials/{trial_id}/metrics")
def report(
    trial_id: int,
    points: Annotated[list[MetricPointIn], Body(max_length=MAX_BATCH)],
    session: SessionDep,
) -> DecisionRead:
    """Store a batch of metric points and get the scheduler's decision for the trial.
    A (name, step) already stored is ignored, so re-sending a batch is safe."""
    decision = trials.report_metrics(session, trial_id, points)
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
