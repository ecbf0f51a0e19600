"""Applies the trial lifecycle (app/engine/lifecycle.py) to the database: the one place a
trial's row changes state, value, budget, rung or strategy data.

`apply` (and `insert` for a new trial) writes a `Change` to the trial's row, the study's
counters (`budget_used`, the best value), the event log and the live notes, and marks the
change for in-memory histories: the study's `history_version` goes up and the trial
carries it. The caller holds the study's row lock (`get_study_for_update`), so versions
are handed out in the order the changes commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.core.notify import notify
from app.db.types import utcnow
from app.engine.base import FINISHED_STATES, TrialState
from app.engine.lifecycle import UNCHANGED, BestValue, Change, tally
from app.events.repository import EventRepository
from app.studies.models import Study
from app.trials import results
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.webhooks import outbox


def insert(
    session: Session,
    study: Study,
    params: Mapping[str, Any],
    change: Change,
    actor: str,
    source: str,
) -> Trial:
    """Creates the trial `change` (from `engine.lifecycle.create`) describes, numbered next.
    Inserted in its final state: one INSERT; the events still tell it was created queued,
    then started."""
    trial = Trial(
        study_id=study.id,
        number=study.next_number,
        state=TrialState.QUEUED,
        params=dict(params),
        extra={},
        source=source,
    )
    study.next_number += 1
    _write(study, trial, change)
    TrialRepository(session).add(trial)
    _record(session, trial, change, actor)
    return trial


def apply(session: Session, study: Study, trial: Trial, change: Change, actor: str) -> None:
    """Writes `change` to `trial` (a row of `study`, locked by the caller)."""
    if change.from_state != trial.state:
        # The trial moved since the change was worked out from it.
        raise Conflict(
            f"the trial is {trial.state}, not {change.from_state}: {change.event.value} refused",
            field="state",
        )
    best_before = (study.best_value, study.best_trial_id)
    _write(study, trial, change)
    _record(session, trial, change, actor)
    # Webhooks (app/webhooks/outbox.py): a new best value, a trial failed for good; their
    # deliveries are written in this transaction. Costs nothing when neither happened.
    outbox.trial_changed(session, study, trial, change, best_before)


def _write(study: Study, trial: Trial, change: Change) -> None:
    if change.restart:
        trial.started_at = None
    state = change.state
    if state != trial.state or change.from_state is None:
        trial.state = state
        now = utcnow()
        if state in FINISHED_STATES:
            trial.finished_at = now
        if state == TrialState.RUNNING:
            if trial.started_at is None:
                trial.started_at = now
            trial.heartbeat_at = now
    if change.value is not UNCHANGED:
        trial.value = change.value
    if change.values is not UNCHANGED:
        trial.values = results.encode(change.values)
    if change.constraint_values is not UNCHANGED:
        trial.constraint_values = results.encode(change.constraint_values)
    if change.budget is not UNCHANGED:
        trial.budget = change.budget
    if change.rung is not UNCHANGED:
        trial.rung = change.rung
    if change.extra is not UNCHANGED:
        trial.extra = dict(change.extra)  # a new dict, so that the JSON column sees it
    if change.params is not UNCHANGED:
        trial.params = dict(change.params)  # a resumed member's new hyperparameters (PBT)
    if change.worker is not UNCHANGED:
        trial.worker = change.worker
    if change.retries_delta:
        trial.retries = (trial.retries or 0) + change.retries_delta
    if change.resumes_delta:
        trial.resumes = (trial.resumes or 0) + change.resumes_delta
    if change.budget_delta:
        study.budget_used += change.budget_delta  # the only place budget_used changes
    if change.tally is not None:
        best = tally(
            BestValue(study.best_value, study.best_trial_id, study.trials_since_improvement),
            change.tally,
            # Infeasible results, and those of several objectives, are never the best value.
            trial.value if results.counts_as_best(study, trial.constraint_values) else None,
            trial.id,
            study.direction,
        )
        study.best_value = best.value
        study.best_trial_id = best.trial_id
        study.trials_since_improvement = best.trials_since_improvement
    if change.visible:
        study.history_version += 1
        trial.history_version = study.history_version


def _record(session: Session, trial: Trial, change: Change, actor: str) -> None:
    """The events of the change's steps, and a live note for each move of state."""
    events = EventRepository(session)
    for step in change.steps:
        if step.logged:
            events.record(
                study_id=trial.study_id,
                trial_id=trial.id,
                kind=step.kind,
                actor=actor,
                from_state=step.from_state,
                to_state=step.to_state,
                reason=step.reason,
                data=dict(step.data) if step.data is not None else None,
            )
        if step.from_state is not None and step.from_state != step.to_state:
            notify(session, trial.study_id, "trial", {"id": trial.id, "state": step.to_state})
