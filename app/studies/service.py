"""Study orchestration: creation, state changes and the completion criteria."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from app.core.errors import Conflict, Invalid, StudyNotFound
from app.core.notify import notify
from app.db.types import utcnow
from app.engine import lifecycle as rules
from app.engine import registry
from app.engine.base import TrialState
from app.engine.errors import ConfigError
from app.engine.space import SearchSpace
from app.events.repository import EventRepository
from app.studies.models import Study, StudyState
from app.studies.repository import StudyRepository
from app.studies.schemas import StudyCreate, StudyRead, StudyUpdate
from app.studies.settings import study_settings
from app.trials import lifecycle
from app.trials.repository import TrialRepository


def validate_study(body: StudyCreate) -> SearchSpace:
    """Checks what pydantic cannot: the space's semantics, the strategy and the fidelity."""
    raw_space = {name: spec.model_dump(exclude_none=True) for name, spec in body.space.items()}
    space = SearchSpace.from_dict(raw_space)
    fidelity = body.fidelity
    if fidelity is not None:
        if fidelity.min >= fidelity.max:
            raise ConfigError(
                "fidelity.min", f"min ({fidelity.min}) must be below max ({fidelity.max})"
            )
        if fidelity.param in space:
            raise ConfigError(
                "fidelity.param",
                f"{fidelity.param!r} is the fidelity: the strategy sets it from each trial's "
                "budget, so remove it from the space",
            )
    strategy = body.strategy.model_dump(exclude_none=True)
    early = body.early_stopping.model_dump(exclude_none=True) if body.early_stopping else None
    registry.validate(strategy, early, has_fidelity=fidelity is not None)
    return space


def create_study(session: Session, body: StudyCreate, actor: str = "api") -> Study:
    validate_study(body)
    if (
        body.parent_study_id is not None
        and StudyRepository(session).get(body.parent_study_id) is None
    ):
        raise Invalid(f"study {body.parent_study_id} not found", field="parent_study_id")
    strategy = body.strategy.model_dump(exclude_none=True)
    seed = strategy.pop("seed", None)
    if seed is None:
        seed = secrets.randbelow(2**31 - 1)
    study = Study(
        name=body.name,
        state=StudyState.RUNNING,
        state_reason="",
        metric=body.objective.metric,
        direction=body.objective.direction,
        aggregate=body.objective.aggregate,
        space={name: spec.model_dump(exclude_none=True) for name, spec in body.space.items()},
        strategy={**strategy, "seed": seed},
        early_stopping=body.early_stopping.model_dump(exclude_none=True)
        if body.early_stopping
        else None,
        limits=body.limits.model_dump(),
        fidelity=body.fidelity.model_dump() if body.fidelity else None,
        execution=body.execution.model_dump() if body.execution else None,
        tags=body.tags,
        parent_study_id=body.parent_study_id,
        seed=seed,
        next_number=0,
        trials_since_improvement=0,
        budget_used=0.0,
    )
    StudyRepository(session).add(study)
    EventRepository(session).record(
        study_id=study.id, kind="study", actor=actor, to_state=StudyState.RUNNING, reason="created"
    )
    notify(session, study.id, "study", {"state": study.state})
    return study


def get_study(session: Session, study_id: int) -> Study:
    study = StudyRepository(session).get(study_id)
    if study is None:
        raise StudyNotFound(study_id)
    return study


def get_study_for_update(session: Session, study_id: int) -> Study:
    study = StudyRepository(session).get_for_update(study_id)
    if study is None:
        raise StudyNotFound(study_id)
    return study


def to_read(study: Study, counts: dict[str, int]) -> StudyRead:
    settings = study_settings(study)
    return StudyRead(
        id=study.id,
        name=study.name,
        state=StudyState(study.state),
        state_reason=study.state_reason,
        objective=settings.objective,
        space=study.space,
        strategy=study.strategy,
        early_stopping=study.early_stopping,
        limits=settings.limits,
        fidelity=settings.fidelity,
        execution=study.execution,
        tags=study.tags or {},
        parent_study_id=study.parent_study_id,
        seed=study.seed,
        best_value=study.best_value,
        best_trial_id=study.best_trial_id,
        n_trials=study.next_number,
        trial_counts={state.value: counts.get(state.value, 0) for state in TrialState},
        budget_used=study.budget_used,
        created_at=study.created_at,
        updated_at=study.updated_at,
        finished_at=study.finished_at,
    )


def read_study(session: Session, study: Study) -> StudyRead:
    counts = StudyRepository(session).trial_counts([study.id])
    return to_read(study, counts.get(study.id, {}))


def list_studies(
    session: Session, offset: int, limit: int, state: str | None
) -> tuple[list[StudyRead], int]:
    repo = StudyRepository(session)
    studies, total = repo.page(offset, limit, state)
    counts = repo.trial_counts(s.id for s in studies)
    return [to_read(s, counts.get(s.id, {})) for s in studies], total


def update_study(session: Session, study_id: int, body: StudyUpdate, actor: str = "api") -> Study:
    study = get_study_for_update(session, study_id)
    if body.name is not None:
        study.name = body.name
    if body.tags is not None:
        study.tags = body.tags
    if body.limits is not None:
        study.limits = body.limits.model_dump()
    if body.state is not None and body.state != study.state:
        target = StudyState(body.state)
        if target == StudyState.STOPPED:
            finish_study(session, study, StudyState.STOPPED, f"stopped by {actor}", actor)
        else:
            previous = study.state
            if target == StudyState.RUNNING and StudyState(previous).is_finished:
                study.finished_at = None
            study.state = target
            study.state_reason = f"{target.value} by {actor}"
            EventRepository(session).record(
                study_id=study.id,
                kind="study",
                actor=actor,
                from_state=previous,
                to_state=target,
                reason=study.state_reason,
            )
    if study.state == StudyState.RUNNING:
        refresh_state(session, study)
    session.flush()
    notify(session, study.id, "study", {"state": study.state})
    return study


def delete_study(session: Session, study_id: int) -> None:
    study = get_study(session, study_id)
    StudyRepository(session).delete(study)


def finish_study(
    session: Session, study: Study, state: StudyState, reason: str, actor: str
) -> None:
    """Ends the study and cancels trials that still run or wait; their next report is told."""
    previous = study.state
    study.state = state
    study.state_reason = reason
    study.finished_at = utcnow()
    events = EventRepository(session)
    events.record(
        study_id=study.id,
        kind="study",
        actor=actor,
        from_state=previous,
        to_state=state,
        reason=reason,
    )
    # Sessions do not autoflush: the trial whose ending ended the study must be seen ended.
    session.flush()
    for trial in TrialRepository(session).in_states(
        study.id, [TrialState.RUNNING, TrialState.QUEUED, TrialState.PAUSED]
    ):
        change = rules.end_with_study(
            trial, completed=state == StudyState.COMPLETED, reason=f"study {state.value}: {reason}"
        )
        lifecycle.apply(session, study, trial, change, actor)
    notify(session, study.id, "study", {"state": state, "reason": reason})


def refresh_state(
    session: Session, study: Study, now: datetime | None = None, unfinished: int | None = None
) -> None:
    """Ends a running study whose completion criteria are met, recording which one.
    `unfinished`: its running and queued trials, when the caller has counted them."""
    if study.state != StudyState.RUNNING:
        return
    reason = completion_reason(session, study, now or utcnow(), unfinished)
    if reason:
        finish_study(session, study, StudyState.COMPLETED, reason, "tunelab")


def completion_reason(
    session: Session, study: Study, now: datetime, unfinished: int | None = None
) -> str | None:
    limits = study_settings(study).limits
    target = limits.target_value
    best = study.best_value
    if target is not None and best is not None:
        reached = best <= target if study.direction == "minimize" else best >= target
        if reached:
            return f"target_value {target} reached: best value {best:.6g} (trial {study.best_trial_id})"
    runtime = limits.max_runtime_s
    if runtime is not None and (now - study.created_at).total_seconds() >= runtime:
        return f"max_runtime_s reached ({runtime:g} s)"
    patience = limits.max_trials_without_improvement
    if patience is not None and study.trials_since_improvement >= patience:
        return f"max_trials_without_improvement reached: {patience} trials without a better value"

    trials = TrialRepository(session)
    if unfinished is None:
        unfinished = trials.count_in_states(study.id, [TrialState.RUNNING, TrialState.QUEUED])
    if unfinished:
        return None
    max_budget = limits.max_budget
    if max_budget is not None and study.budget_used >= max_budget:
        return f"max_budget reached ({study.budget_used:g} of {max_budget:g} fidelity units)"
    cap = trial_cap(study)
    if study.next_number >= cap:
        # Paused trials keep the study open only while the scheduler would promote one.
        if trials.count_in_states(study.id, [TrialState.PAUSED]) and _resume_pending(
            session, study
        ):
            return None
        if cap < limits.max_trials:
            return f"search space exhausted: all {cap} grid points tried"
        return f"max_trials reached ({cap})"
    return None


def _resume_pending(session: Session, study: Study) -> bool:
    from app.trials.history import DbHistory, strategy_for

    strategy = strategy_for(study)
    history = DbHistory(session, study, with_intermediate=strategy.scheduler.needs_intermediate)
    return strategy.pending_resume(history) is not None


def budget_left(study: Study) -> bool:
    """Whether max_budget (total fidelity units) still allows granting more."""
    max_budget = study_settings(study).limits.max_budget
    return max_budget is None or study.budget_used < max_budget


def trial_cap(study: Study) -> int:
    """max_trials, lowered to the number of configs the strategy can offer (a grid)."""
    settings = study_settings(study)
    cap = settings.limits.max_trials
    if registry.is_bounded(settings.strategy):
        from app.trials.history import strategy_for

        capacity = strategy_for(study).capacity()
        cap = cap if capacity is None else min(cap, capacity)
    return cap


def ensure_running(study: Study) -> None:
    if study.state == StudyState.PAUSED:
        raise Conflict(
            "the study is paused; resume it to get new trials",
            field="state",
            headers={"Retry-After": "5"},
        )
