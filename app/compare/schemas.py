from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.schemas import Schema
from app.events.schemas import EventRead
from app.trials.schemas import TrialRead


class ObjectiveRead(Schema):
    metric: str
    direction: str


class CurveRead(Schema):
    """One trial's curve of one metric, thinned to at most `points` points (the last point
    always kept); non-finite values are null (a gap in the line). `total` counts them all."""

    steps: list[float]
    values: list[float | None]
    total: int


class ComparedTrial(Schema):
    trial: TrialRead
    curve: CurveRead
    # Its decisions and state changes, oldest first (heartbeat notes left out).
    events: list[EventRead]


class TrialCompare(Schema):
    study_id: int
    study_name: str
    objectives: list[ObjectiveRead]
    # The metric whose curves are returned, and every metric any of the trials recorded
    # (the objectives first).
    metric: str
    metrics: list[str]
    x_label: str
    rung_levels: list[float]
    trials: list[ComparedTrial]


class HistoryPoints(Schema):
    """Finished trials with a value, in trial number order (columns)."""

    trial_id: list[int]
    number: list[int]
    value: list[float]
    # Seconds from the study's first start to the trial's end (null when unknown).
    seconds: list[float | None]


class BestSteps(Schema):
    """The best-so-far staircase: where it improves, and its last point (exact)."""

    number: list[int]
    seconds: list[float | None]
    value: list[float]


class BestTrialRead(Schema):
    trial_id: int
    number: int
    value: float
    params: dict[str, Any]


class StudyHistory(Schema):
    study_id: int
    name: str
    state: str
    direction: str
    metric: str
    objectives: list[ObjectiveRead]
    started_at: datetime | None
    n_trials: int
    n_scored: int
    # `points` holds at most the requested number of trials: the best half of it and an
    # even sample of the rest; `thinned` says some were left out.
    thinned: bool
    points: HistoryPoints
    best_by_number: BestSteps
    best_by_time: BestSteps
    best: BestTrialRead | None
