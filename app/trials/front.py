"""A study's best trials under several objectives and constraints: the Pareto set, the
hypervolume and its history, and the trial reads that carry them (app/engine/pareto.py).

The Pareto set is the feasible completed trials no other one dominates (one objective: the
trials with the best feasible value). It is worked out from one query over the study's
results and kept per (study, history_version): the version goes up with every change a
strategy can see, so a cached set is never stale, and a page of the trials list, the
Pareto endpoint and the export share it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.core.notes import EXCERPT_CHARS
from app.engine import pareto
from app.engine.base import TrialState
from app.studies import service as studies
from app.studies.models import Study
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.trials.results import Objectives
from app.trials.schemas import (
    HypervolumePoint,
    HypervolumeRead,
    ParetoRead,
    TrialConstraintRead,
    TrialDetail,
    TrialRead,
)

CACHED_STUDIES = 64


@dataclass
class Front:
    """What a study's results say about its best trials."""

    goals: Objectives
    pareto_ids: set[int]
    feasible: dict[int, bool | None]
    reference: list[float] | None  # in the objectives' own units
    source: str | None  # given | derived | None (no feasible result yet)
    numbers: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    oriented: list[list[float] | None] = field(default_factory=list)
    _history: list[float] | None = None

    def oriented_reference(self) -> list[float] | None:
        if self.reference is None:
            return None
        return pareto.orient(self.reference, self.goals.directions)

    def hypervolume(self) -> float | None:
        ref = self.oriented_reference()
        if ref is None:
            return None
        points = [p for p in self.oriented if p is not None]
        return pareto.hypervolume(np.asarray(points).reshape(-1, len(ref)), ref)

    def history(self) -> list[float]:
        if self._history is None:
            ref = self.oriented_reference()
            self._history = [] if ref is None else pareto.hypervolume_history(self.oriented, ref)
        return self._history


_CACHE: OrderedDict[tuple[int, Any, int], Front] = OrderedDict()
_LOCK = threading.Lock()


def front_of(session: Session, study: Study, cache: bool = True) -> Front:
    """`cache=False` inside a transaction that wrote: what it read may never commit."""
    if not cache:
        return _build(session, study)
    # created_at: another study (another database, a reused id) never matches.
    key = (study.id, study.created_at, study.history_version)
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    built = _build(session, study)
    with _LOCK:
        _CACHE[key] = built
        while len(_CACHE) > CACHED_STUDIES:
            _CACHE.popitem(last=False)
    return built


def _build(session: Session, study: Study) -> Front:
    goals = Objectives.of(study)
    rows = TrialRepository(session).results(study.id)
    feasible: dict[int, bool | None] = {}
    vectors: dict[int, list[float]] = {}
    numbers, ids, oriented = [], [], []
    for trial_id, number, state, value, raw_values, raw_constraints in rows:
        ok = goals.feasible(True, raw_constraints)
        feasible[trial_id] = ok
        vector = goals.vector(value, raw_values)
        counted = state == TrialState.COMPLETED and ok is True and vector is not None
        if counted and all(np.isfinite(vector)):  # type: ignore[arg-type]
            vectors[trial_id] = vector  # type: ignore[assignment]
        numbers.append(number)
        ids.append(trial_id)
        oriented.append(
            pareto.orient(vectors[trial_id], goals.directions) if trial_id in vectors else None
        )
    pareto_ids = set(pareto.front_of(vectors, goals.directions))
    if goals.reference_point is not None:
        reference: list[float] | None = list(goals.reference_point)
        source: str | None = "given"
    else:
        points = [p for p in oriented if p is not None]
        derived = pareto.derive_reference(np.asarray(points)) if points else None
        reference = None if derived is None else pareto.unorient(derived, goals.directions)
        source = None if derived is None else "derived"
    return Front(goals, pareto_ids, feasible, reference, source, numbers, ids, oriented)


def read(trial: Trial, front: Front) -> TrialRead:
    """The trial as the API reads it, with its objectives, constraints and Pareto flag."""
    goals = front.goals
    base = TrialRead.model_validate(trial)
    has_result = trial.value is not None and trial.state in (
        TrialState.COMPLETED,
        TrialState.STOPPED,
    )
    return base.model_copy(
        update={
            "values": goals.vector(trial.value, trial.values)
            if goals.multi
            else (None if trial.value is None else [trial.value]),
            "constraints": [
                TrialConstraintRead(**c) for c in goals.constraint_report(trial.constraint_values)
            ],
            "feasible": goals.feasible(has_result, trial.constraint_values),
            "is_pareto": trial.id in front.pareto_ids,
            # Loaded by listings only (TrialRepository.page): None elsewhere.
            "has_notes": None if trial.notes_excerpt is None else bool(trial.notes_excerpt),
        }
    )


def read_trials(session: Session, trials: Sequence[Trial], cache: bool = True) -> list[TrialRead]:
    """Trials of any studies as the API reads them (one Pareto set per study)."""
    fronts: dict[int, Front] = {}
    out = []
    for trial in trials:
        if trial.study_id not in fronts:
            study = studies.get_study(session, trial.study_id)
            fronts[trial.study_id] = front_of(session, study, cache)
        out.append(read(trial, fronts[trial.study_id]))
    return out


def read_one(session: Session, trial: Trial, cache: bool = True) -> TrialRead:
    return read_trials(session, [trial], cache)[0]


def read_detail(session: Session, trial: Trial, cache: bool = True) -> TrialDetail:
    """One trial with its note (`GET /trials/{id}`, `PATCH /trials/{id}`)."""
    notes, updated_at, updated_by = TrialRepository(session).notes_of(trial)
    base = read_one(session, trial, cache)
    return TrialDetail(
        **dict(base),
        notes=notes,
        notes_updated_at=updated_at,
        notes_updated_by=updated_by,
    ).model_copy(update={"has_notes": bool(notes), "notes_excerpt": notes[:EXCERPT_CHARS]})


def pareto_read(session: Session, study_id: int) -> ParetoRead:
    study = studies.get_study(session, study_id)
    front = front_of(session, study)
    trials = TrialRepository(session).by_ids(sorted(front.pareto_ids))
    return ParetoRead(
        objectives=[_objective(o) for o in front.goals.objectives],
        reference_point=front.reference,
        reference_point_source=front.source,
        hypervolume=front.hypervolume(),
        trials=[read(t, front) for t in trials],
    )


def hypervolume_read(session: Session, study_id: int) -> HypervolumeRead:
    study = studies.get_study(session, study_id)
    front = front_of(session, study)
    volumes = front.history()
    return HypervolumeRead(
        reference_point=front.reference,
        reference_point_source=front.source,
        points=[
            HypervolumePoint(number=n, trial_id=i, hypervolume=v)
            for n, i, v in zip(front.numbers, front.ids, volumes, strict=False)
        ],
    )


def _objective(o: pareto.ObjectiveSpec) -> dict[str, Any]:
    return {"metric": o.metric, "direction": o.direction, "aggregate": o.aggregate}


def export_flags(
    front: Front, trial_id: int, raw_constraints: Any, has_result: bool
) -> dict[str, Any]:
    """The export's `feasible` and `is_pareto` cells of one trial."""
    return {
        "feasible": front.goals.feasible(has_result, raw_constraints),
        "is_pareto": trial_id in front.pareto_ids,
    }
