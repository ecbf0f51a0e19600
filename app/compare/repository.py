"""Every SQL query of the compare views."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.events.models import Event
from app.metrics.models import MetricPoint
from app.trials.models import Trial

SCORED = ("completed", "stopped")


@dataclass(frozen=True)
class ScoredRow:
    id: int
    number: int
    value: float
    finished_at: datetime | None


class CompareRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def trials(self, ids: Sequence[int]) -> list[Trial]:
        return list(self.session.scalars(select(Trial).where(Trial.id.in_(list(ids)))))

    def metric_names(self, trial_ids: Sequence[int]) -> list[str]:
        stmt = select(MetricPoint.name).where(MetricPoint.trial_id.in_(list(trial_ids))).distinct()
        return sorted(self.session.scalars(stmt))

    def curves(
        self, trial_ids: Sequence[int], metric: str, per_trial: int
    ) -> dict[int, tuple[list[tuple[float, float]], int]]:
        """Each trial's (step, value) points of `metric` thinned to about `per_trial`:
        every k-th by step and always the last; with the count of all its points."""
        inner = (
            select(
                MetricPoint.trial_id,
                MetricPoint.step,
                MetricPoint.value,
                func.row_number()
                .over(partition_by=MetricPoint.trial_id, order_by=MetricPoint.step)
                .label("rn"),
                func.count().over(partition_by=MetricPoint.trial_id).label("n"),
            )
            .where(MetricPoint.trial_id.in_(list(trial_ids)), MetricPoint.name == metric)
            .subquery()
        )
        stride = (inner.c.n + (per_trial - 1)) // per_trial
        stmt = (
            select(inner.c.trial_id, inner.c.step, inner.c.value, inner.c.n)
            .where(or_((inner.c.rn - 1) % stride == 0, inner.c.rn == inner.c.n))
            .order_by(inner.c.trial_id, inner.c.step)
        )
        out: dict[int, tuple[list[tuple[float, float]], int]] = {}
        points: dict[int, list[tuple[float, float]]] = defaultdict(list)
        totals: dict[int, int] = {}
        for trial_id, step, value, n in self.session.execute(stmt):
            points[trial_id].append((float(step), float(value)))
            totals[trial_id] = int(n)
        for trial_id, pts in points.items():
            out[trial_id] = (pts, totals[trial_id])
        return out

    def events(self, trial_ids: Sequence[int], per_trial: int) -> dict[int, list[Event]]:
        """The trials' events but heartbeats, oldest first, the last `per_trial` of each."""
        stmt = (
            select(Event)
            .where(Event.trial_id.in_(list(trial_ids)), Event.kind != "heartbeat")
            .order_by(Event.id)
        )
        out: dict[int, list[Event]] = defaultdict(list)
        for event in self.session.scalars(stmt):
            if event.trial_id is not None:
                out[event.trial_id].append(event)
        return {trial_id: events[-per_trial:] for trial_id, events in out.items()}

    def scored(self, study_id: int) -> list[ScoredRow]:
        """The study's finished trials that have a value, in number order (no params)."""
        stmt = (
            select(Trial.id, Trial.number, Trial.value, Trial.finished_at)
            .where(Trial.study_id == study_id, Trial.state.in_(SCORED), Trial.value.is_not(None))
            .order_by(Trial.number)
        )
        return [
            ScoredRow(int(i), int(n), float(v), end)
            for i, n, v, end in self.session.execute(stmt)
            if v is not None
        ]

    def first_start(self, study_id: int) -> datetime | None:
        stmt = select(func.min(Trial.started_at)).where(Trial.study_id == study_id)
        return self.session.scalar(stmt)

    def count(self, study_id: int) -> int:
        stmt = select(func.count()).select_from(Trial).where(Trial.study_id == study_id)
        return int(self.session.scalar(stmt) or 0)
