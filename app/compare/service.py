"""The compare views' data: 2-4 trials of one study side by side, and a study's history
bounded for overlaying with other studies' (at most `points` markers; the best-so-far
staircase exact at its steps)."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.compare.repository import CompareRepository, ScoredRow
from app.compare.schemas import (
    BestSteps,
    BestTrialRead,
    ComparedTrial,
    CurveRead,
    HistoryPoints,
    ObjectiveRead,
    StudyHistory,
    TrialCompare,
)
from app.core.errors import Invalid, NotFound
from app.events.schemas import EventRead
from app.plots import rows as plot_rows
from app.plots.builders.common import rung_levels
from app.studies import service as studies
from app.studies.models import Study
from app.trials import front
from app.trials import service as trials_service

MIN_TRIALS, MAX_TRIALS = 2, 4
EVENTS_PER_TRIAL = 500
# Histories kept per (study, history_version, points): every change they show (a value,
# a state, the end time moves with it) bumps the study's version.
HISTORIES_KEPT = 32
_histories: OrderedDict[tuple[object, ...], _Scored] = OrderedDict()
_histories_lock = threading.Lock()


def parse_ids(raw: str | None, field: str, low: int, high: int) -> list[int]:
    """ "3,7,12" -> [3, 7, 12]: between `low` and `high` distinct positive ids."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not parts:
        raise Invalid(f"{field} must list {low} to {high} ids, comma-separated", field=field)
    ids: list[int] = []
    for part in parts:
        if not (part.isascii() and part.isdigit()) or not 0 < int(part) <= 2**63 - 1:
            raise Invalid(f"{field}: {part!r} is not an id", field=field)
        if int(part) in ids:
            raise Invalid(f"{field}: {part} is listed twice", field=field)
        ids.append(int(part))
    if not low <= len(ids) <= high:
        raise Invalid(f"{field} must list {low} to {high} ids, not {len(ids)}", field=field)
    return ids


def objectives_of(study: Study) -> list[ObjectiveRead]:
    listed = study.objectives or [{"metric": study.metric, "direction": study.direction}]
    return [ObjectiveRead(metric=str(o["metric"]), direction=str(o["direction"])) for o in listed]


def _curve(points: Sequence[tuple[float, float]], total: int) -> CurveRead:
    return CurveRead(
        steps=[s for s, _ in points],
        values=[v if math.isfinite(v) else None for _, v in points],
        total=total,
    )


def compare_trials(
    session: Session, study_id: int, raw_ids: str | None, metric: str | None, points: int
) -> TrialCompare:
    """The trials (in the order asked), each with its curve of `metric` (default: the
    study's objective) and its events. A trial missing or of another study: 404 on
    `trials`, the same answer for both."""
    study = studies.get_study(session, study_id)
    ids = parse_ids(raw_ids, "trials", MIN_TRIALS, MAX_TRIALS)
    repo = CompareRepository(session)
    found = {t.id: t for t in repo.trials(ids) if t.study_id == study.id}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(
            f"no trial {', '.join(map(str, missing))} in study {study.id}",
            field="trials",
        )
    trials = [found[i] for i in ids]
    objectives = objectives_of(study)
    recorded = repo.metric_names(ids)
    names = [o.metric for o in objectives]
    names += [n for n in recorded if n not in names]
    shown = metric or study.metric
    curves = repo.curves(ids, shown, points)
    events = repo.events(ids, EVENTS_PER_TRIAL)
    reads = front.read_trials(session, trials)
    fidelity = study.fidelity
    x_label = (
        f"step (budget: {fidelity['param']})" if fidelity and fidelity.get("param") else "step"
    )
    return TrialCompare(
        study_id=study.id,
        study_name=study.name,
        objectives=objectives,
        metric=shown,
        metrics=names,
        x_label=x_label,
        rung_levels=rung_levels(fidelity),
        trials=[
            ComparedTrial(
                trial=read,
                curve=_curve(*curves.get(read.id, ([], 0))),
                events=[EventRead.model_validate(e) for e in events.get(read.id, [])],
            )
            for read in reads
        ],
    )


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def _seconds(row: ScoredRow, start: datetime | None) -> float | None:
    if start is None or row.finished_at is None:
        return None
    return max(0.0, (row.finished_at - start).total_seconds())


def best_steps(
    rows: Sequence[ScoredRow], direction: str, start: datetime | None, by_time: bool
) -> BestSteps:
    """Best so far, by trial number or by finishing time: its improvements and the last
    trial, so that the staircase is exact and runs to the end."""
    steps = BestSteps(number=[], seconds=[], value=[])
    ordered = list(rows)
    if by_time:
        ordered = [r for r in rows if r.finished_at is not None]
        ordered.sort(key=lambda r: (r.finished_at, r.number))
    best: float | None = None
    for row in ordered:
        if not math.isfinite(row.value):
            continue
        if best is None or _better(row.value, best, direction):
            best = row.value
            steps.number.append(row.number)
            steps.seconds.append(_seconds(row, start))
            steps.value.append(best)
    if best is not None and ordered and steps.number[-1] != ordered[-1].number:
        steps.number.append(ordered[-1].number)
        steps.seconds.append(_seconds(ordered[-1], start))
        steps.value.append(best)
    return steps


def thin(rows: list[ScoredRow], limit: int, direction: str) -> list[ScoredRow]:
    """At most `limit` rows: the best half of the limit and an even sample of the rest,
    in number order."""
    if len(rows) <= limit:
        return rows
    ranked = sorted(rows, key=lambda r: r.value, reverse=direction == "maximize")
    best = {r.id for r in ranked[: limit // 2]}
    rest = [r for r in rows if r.id not in best]
    stride = math.ceil(len(rest) / (limit - len(best)))
    sample = {r.id for r in rest[::stride]}
    return [r for r in rows if r.id in best or r.id in sample]


def study_history(session: Session, study_id: int, points: int) -> StudyHistory:
    """The study's finished trials (at most `points`), its best-so-far staircases and its
    best trial. The trials' part is built once per study version (every change it shows,
    a value, a state and with it the end time, bumps the version; a study never changed
    through the lifecycle, version 0, is read every time); the study's own fields and the
    trial count are read fresh."""
    study = studies.get_study(session, study_id)
    repo = CompareRepository(session)
    version = study.history_version or 0
    key = (plot_rows.study_key(session, study), version, points)
    cached: _Scored | None = None
    if version > 0:
        with _histories_lock:
            cached = _histories.get(key)
            if cached is not None:
                _histories.move_to_end(key)
    if cached is None:
        cached = _scored(session, repo, study, points)
        if version > 0:
            with _histories_lock:
                _histories[key] = cached
                while len(_histories) > HISTORIES_KEPT:
                    _histories.popitem(last=False)
    return StudyHistory(
        study_id=study.id,
        name=study.name,
        state=study.state,
        direction=study.direction,
        metric=study.metric,
        objectives=objectives_of(study),
        n_trials=repo.count(study.id),
        **cached.fields,
    )


@dataclass(frozen=True)
class _Scored:
    fields: dict[str, Any]


def _scored(session: Session, repo: CompareRepository, study: Study, points: int) -> _Scored:
    direction = study.direction
    rows = [r for r in repo.scored(study.id) if math.isfinite(r.value)]
    start = repo.first_start(study.id)
    shown = thin(rows, points, direction)
    best_row: ScoredRow | None = None
    for row in rows:
        if best_row is None or _better(row.value, best_row.value, direction):
            best_row = row
    best: BestTrialRead | None = None
    if best_row is not None:
        params = dict(trials_service.get_trial(session, best_row.id).params)
        best = BestTrialRead(
            trial_id=best_row.id, number=best_row.number, value=best_row.value, params=params
        )
    return _Scored(
        {
            "started_at": start,
            "n_scored": len(rows),
            "thinned": len(shown) < len(rows),
            "points": HistoryPoints(
                trial_id=[r.id for r in shown],
                number=[r.number for r in shown],
                value=[r.value for r in shown],
                seconds=[_seconds(r, start) for r in shown],
            ),
            "best_by_number": best_steps(rows, direction, start, by_time=False),
            "best_by_time": best_steps(rows, direction, start, by_time=True),
            "best": best,
        }
    )
