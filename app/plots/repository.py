"""Every SQL query behind the figures. Long curves are decimated in the database."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, or_, select
from sqlalchemy.orm import Session

from app.metrics.models import MetricPoint
from app.trials.models import Trial


@dataclass(frozen=True)
class TrialRow:
    id: int
    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    budget: float | None
    rung: int
    worker: str | None
    last_step: float | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass
class Series:
    """One trial's curve of one metric; `cursor` is the id of its newest stored point."""

    steps: list[float]
    values: list[float]
    cursor: int = 0


class PlotRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def trials(self, study_id: int, full: bool = True, since_version: int = 0) -> list[TrialRow]:
        """The study's trials in number order; only those changed after the study's
        `since_version` (an indexed read) when it is above 0.

        Without `full`, only what the history, curves and rungs need: parameters (JSON)
        and times are most of the cost of reading 100,000 rows, and stay empty."""
        columns = [Trial.id, Trial.number, Trial.state, Trial.value, Trial.budget, Trial.rung]
        if full:
            columns += [Trial.params, Trial.worker, Trial.started_at, Trial.finished_at]
        stmt = select(*columns, Trial.last_step).where(Trial.study_id == study_id)
        if since_version > 0:
            stmt = stmt.where(Trial.history_version > since_version)
        stmt = stmt.order_by(Trial.number)
        result: Any = self.session.execute(stmt)  # the columns depend on `full`
        if full:
            return [
                TrialRow(i, n, st, params, v, b, r, w, last, start, end)
                for i, n, st, v, b, r, params, w, start, end, last in result
            ]
        return [
            TrialRow(i, n, st, {}, v, b, r, None, last, None, None)
            for i, n, st, v, b, r, last in result
        ]

    def _decimated(self, where: ColumnElement[bool], per_series: int) -> Any:
        """(trial_id, name, step, value, id) with at most about `per_series` points per
        (trial, metric): every k-th point by step, and always the last one, so a stopped
        trial's curve ends where it ended."""
        key = (MetricPoint.trial_id, MetricPoint.name)
        inner = (
            select(
                MetricPoint.trial_id,
                MetricPoint.name,
                MetricPoint.step,
                MetricPoint.value,
                MetricPoint.id,
                func.row_number().over(partition_by=key, order_by=MetricPoint.step).label("rn"),
                func.count().over(partition_by=key).label("n"),
            )
            .where(where)
            .subquery()
        )
        stride = (inner.c.n + (per_series - 1)) // per_series
        return (
            select(inner.c.trial_id, inner.c.name, inner.c.step, inner.c.value, inner.c.id)
            .where(or_((inner.c.rn - 1) % stride == 0, inner.c.rn == inner.c.n))
            .order_by(inner.c.trial_id, inner.c.name, inner.c.step)
        )

    def study_curves(
        self, study_id: int, metric: str, per_trial: int, trial_ids: set[int] | None = None
    ) -> dict[int, Series]:
        """Every trial's curve of `metric` (or only those of `trial_ids`), thinned to
        about `per_trial` points.

        A window function per trial costs a sort of every point of the study; instead
        integral steps are kept on a common stride (from the longest curve), with each
        trial's last step and any fractional steps, in one scan of the index."""
        longest = self.session.scalar(
            select(func.max(Trial.last_step)).where(Trial.study_id == study_id)
        )
        stride = max(1, math.ceil(((longest or 0) + 1) / per_trial))
        step_int = cast(MetricPoint.step, Integer)
        stmt = (
            select(MetricPoint.trial_id, MetricPoint.step, MetricPoint.value)
            .join(Trial, Trial.id == MetricPoint.trial_id)
            .where(Trial.study_id == study_id, MetricPoint.name == metric)
            .order_by(MetricPoint.trial_id, MetricPoint.step)
        )
        if trial_ids is not None:
            stmt = stmt.where(MetricPoint.trial_id.in_(sorted(trial_ids)))
        if stride > 1:
            stmt = stmt.where(
                or_(
                    step_int % stride == 0,
                    MetricPoint.step == Trial.last_step,
                    step_int != MetricPoint.step,
                )
            )
        out: dict[int, Series] = defaultdict(lambda: Series([], []))
        for trial_id, step, value in self.session.execute(stmt):
            series = out[trial_id]
            series.steps.append(float(step))
            series.values.append(float(value))
        return out

    def cursors(self, trial_ids: list[int]) -> dict[int, int]:
        """Newest point id of each trial (the `since=` to continue from)."""
        if not trial_ids:
            return {}
        stmt = (
            select(MetricPoint.trial_id, func.max(MetricPoint.id))
            .where(MetricPoint.trial_id.in_(trial_ids))
            .group_by(MetricPoint.trial_id)
        )
        return {int(t): int(c) for t, c in self.session.execute(stmt)}

    def trial_curves(self, trial_id: int, per_metric: int) -> dict[str, Series]:
        out: dict[str, Series] = {}
        stmt = self._decimated(MetricPoint.trial_id == trial_id, per_metric)
        for _trial_id, name, step, value, _id in self.session.execute(stmt):
            series = out.setdefault(name, Series([], []))
            series.steps.append(float(step))
            series.values.append(float(value))
        return out
