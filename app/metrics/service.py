"""Reading a trial's metric points. Storing them is part of a trial's report
(`app/trials/service.store_metrics`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.metrics.repository import MetricRepository
from app.metrics.schemas import MetricPointList, MetricPointRead
from app.trials import service as trials


def page(
    session: Session, trial_id: int, name: str | None, since: int, limit: int
) -> MetricPointList:
    """Points of the trial stored after the cursor `since`, oldest first."""
    trials.get_trial(session, trial_id)
    points = MetricRepository(session).page(trial_id, name, since, limit)
    return MetricPointList(
        items=[MetricPointRead.model_validate(p) for p in points],
        cursor=points[-1].id if points else since,
    )
