"""Study orchestration: creation, state changes and the completion criteria."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

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
from app.projects import service as project_service
from app.studies.models import Study, StudyState
from app.studies.repository import StudyRepository
from app.studies.schemas import StudyCreate, StudyRead, StudyUpdate
from app.studies.settings import study_settings
from app.trials import lifecycle
from app.trials.repository import TrialRepository
from app.webhooks import outbox


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
    _validate_objectives(body)
    if strategy.get("name") in registry.POPULATION:
        _check_population(strategy, body)
    return space


def _check_population(strategy: dict[str, Any], body: StudyCreate) -> None:
    """PBT and PB2 move weights between trials through their checkpoint folders: a script
    the runner starts must say it saves and loads one."""
    from app.engine.schedulers.pbt import check_options

    check_options(strategy, body.fidelity)
    if body.execution is not None and not body.execution.checkpoint:
        raise ConfigError(
            "execution.checkpoint",
            f"the {strategy['name']} strategy resumes members from copies of each other's "
            "checkpoints: make the script save its state in TUNELAB_CHECKPOINT_DIR when it "
            "exits and load it when it starts, then set execution.checkpoint: true",
        )


def _validate_objectives(body: StudyCreate) -> None:
    """Several objectives and constraints: what pydantic cannot check (app/engine/pareto.py)."""
    objectives = body.objectives or [body.objective]
    if body.objectives and body.objectives[0] != body.objective:
        raise ConfigError(
            "objectives", "give `objective` or `objectives`; when both, the first must be it"
        )
    seen: set[str] = set()
    for i, objective in enumerate(objectives):
        if objective.metric in seen:
            raise ConfigError(f"objectives.{i}.metric", f"{objective.metric!r} is given twice")
        seen.add(objective.metric)
    for i, constraint in enumerate(body.constraints):
        if constraint.metric in seen:
            raise ConfigError(
                f"constraints.{i}.metric",
                f"{constraint.metric!r} is already an objective or constrained",
            )
        seen.add(constraint.metric)
    if body.reference_point is not None and len(body.reference_point) != len(objectives):
        raise ConfigError(
            "reference_point",
            f"needs one value per objective ({len(objectives)}), got {len(body.reference_point)}",
        )
    if len(objectives) > 1:
        sampler = registry.parse(
            body.strategy.model_dump(exclude_none=True), None, body.fidelity is not None
        ).sampler
        if sampler == "gp":
            raise ConfigError(
                "strategy.name",
                "gp optimizes one objective; use nsga2, motpe (or tpe), random or sobol",
            )
        if body.early_stopping is not None:
            raise ConfigError(
                "early_stopping", "stopping rules compare one objective; give one objective"
            )
        if body.limits.target_value is not None:
            raise ConfigError(
                "limits.target_value", "a study with several objectives has no single target"
            )
        if body.limits.max_trials_without_improvement is not None:
            raise ConfigError(
                "limits.max_trials_without_improvement",
                "a study with several objectives has no single best value",
            )


def create_study(
    session: Session, body: StudyCreate, actor: str = "api", project_id: int | None = None
) -> Study:
    """`project_id`: where the caller checked it may create (app/projects); None: the
    project the body names, or the default one."""
    validate_study(body)
    if project_id is None:
        project_id = project_service.resolve(session, body.project).id
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
        objectives=[o.model_dump() for o in body.objectives]
        if body.objectives and len(body.objectives) > 1
        else None,
        constraints=[c.model_dump() for c in body.constraints] or None,
        reference_point=body.reference_point,
        space={name: spec.model_dump(exclude_none=True) for name, spec in body.space.items()},
        strategy={**strategy, "seed": seed},
        early_stopping=body.early_stopping.model_dump(exclude_none=True)
        if body.early_stopping
        else None,
        limits=body.limits.model_dump(),
        fidelity=body.fidelity.model_dump() if body.fidelity else None,
        execution=body.execution.model_dump() if body.execution else None,
        tags=body.tags,
        notes=body.notes,
        notes_updated_at=utcnow() if body.notes else None,
        notes_updated_by=actor if body.notes else None,
        parent_study_id=body.parent_study_id,
        project_id=project_id,
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
        objectives=study.objectives or [settings.objective.model_dump()],
        constraints=study.constraints or [],
        reference_point=study.reference_point,
        space=study.space,
        strategy=study.strategy,
        early_stopping=study.early_stopping,
        limits=settings.limits,
        fidelity=settings.fidelity,
        execution=study.execution,
        tags=study.tags or {},
        notes=study.notes,
        notes_updated_at=study.notes_updated_at,
        notes_updated_by=study.notes_updated_by,
        parent_study_id=study.parent_study_id,
        project_id=study.project_id,
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
    session: Session,
    offset: int,
    limit: int,
    state: str | None,
    projects: frozenset[int] | None = None,
) -> tuple[list[StudyRead], int]:
    """A page of studies, newest first; `projects`: only those of these projects."""
    repo = StudyRepository(session)
    studies, total = repo.page(offset, limit, state, projects)
    counts = repo.trial_counts(s.id for s in studies)
    return [to_read(s, counts.get(s.id, {})) for s in studies], total


def update_study(
    session: Session,
    study_id: int,
    body: StudyUpdate,
    actor: str = "api",
    editor: str | None = None,
) -> Study:
    """`editor`: who is named as the last writer of the notes (the caller's token name)."""
    study = get_study_for_update(session, study_id)
    if body.name is not None:
        study.name = body.name
    if body.tags is not None:
        study.tags = body.tags
    if body.notes is not None:
        study.notes = body.notes
        study.notes_updated_at = utcnow()
        study.notes_updated_by = editor or actor
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
    # Webhooks: the study's end (and its target reached), in this transaction.
    outbox.study_finished(session, study, previous, reason)


def refresh_state(
    session: Session, study: Study, now: datetime | None = None, unfinished: int | None = None
) -> None:
    """Ends a running study whose completion criteria are met, recording which one.
    `unfinished`: its running and queued trials, when the caller has counted them."""
    if study.state != StudyState.RUNNING:
        return
    reason = completion_reason(session, study, now or utcnow(), unfinished)
    if reason:
        reason = failed_note(session, study, reason)
        finish_study(session, study, StudyState.COMPLETED, reason, "tunelab")


def failed_note(session: Session, study: Study, reason: str) -> str:
    """`reason`, led by "every trial failed" when no trial of the study ended any other
    way: a limit reached by failures alone must not read as a study that went well."""
    if study.best_value is not None:
        return reason
    counts = TrialRepository(session).counts_by_state(study.id, [s.value for s in TrialState])
    failed = counts.get(TrialState.FAILED, 0)
    if failed and failed == sum(counts.values()):
        return f"every trial failed ({failed} of {failed}); {reason}"
    return reason


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

    max_budget = limits.max_budget
    cap = trial_cap(study)
    if study.next_number < cap and (max_budget is None or study.budget_used < max_budget):
        # Neither criterion below can be met: a tell (under the study's row lock) spares
        # the count of unfinished trials.
        return None
    trials = TrialRepository(session)
    if unfinished is None:
        unfinished = trials.count_in_states(study.id, [TrialState.RUNNING, TrialState.QUEUED])
    if unfinished:
        return None
    if max_budget is not None and study.budget_used >= max_budget:
        return f"max_budget reached ({study.budget_used:g} of {max_budget:g} fidelity units)"
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
