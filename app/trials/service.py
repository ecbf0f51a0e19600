"""Trial orchestration: ask, report, tell, heartbeats, cancellation and recovery."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.core.errors import Conflict, Gone, Invalid, TrialNotFound
from app.core.notify import notify
from app.db.types import utcnow
from app.engine import registry
from app.engine.base import (
    FINISHED_STATES,
    Action,
    Decision,
    SearchExhausted,
    Suggestion,
    TrialState,
)
from app.engine.errors import ConfigError
from app.engine.space import SearchSpace
from app.events.repository import EventRepository
from app.metrics.repository import MetricRepository, ReportedTrial
from app.metrics.schemas import MetricPointIn
from app.studies import service as studies
from app.studies.models import Study, StudyState
from app.trials.history import DbHistory, strategy_for
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.trials.schemas import TrialComplete, TrialCreate

RETRY_AFTER_S = "2"


def get_trial(session: Session, trial_id: int) -> Trial:
    trial = TrialRepository(session).get(trial_id)
    if trial is None:
        raise TrialNotFound(trial_id)
    return trial


def _budget_default(study: Study) -> float | None:
    return float(study.fidelity["max"]) if study.fidelity else None


def _new_trial(
    session: Session,
    study: Study,
    params: dict,
    *,
    state: TrialState,
    source: str,
    actor: str,
    budget: float | None = None,
    extra: dict | None = None,
) -> Trial:
    trial = Trial(
        study_id=study.id,
        number=study.next_number,
        state=TrialState.QUEUED,
        params=params,
        budget=budget,
        extra=extra or {},
        source=source,
        worker=actor if state == TrialState.RUNNING else None,
    )
    study.next_number += 1
    if budget is not None and state != TrialState.QUEUED:
        study.budget_used += budget
    if state != TrialState.QUEUED:
        # Inserted in its state (one INSERT, not an INSERT and an UPDATE); the events
        # below still tell that it was created queued, then started.
        studies.enter_state(trial, state)
    TrialRepository(session).add(trial)
    EventRepository(session).record(
        study_id=study.id,
        trial_id=trial.id,
        kind="created",
        actor=actor,
        to_state=TrialState.QUEUED,
        reason=f"{source} config",
        data={"params": params},
    )
    if state != TrialState.QUEUED:
        studies.record_state_change(
            session,
            trial,
            TrialState.QUEUED,
            actor,
            "started" if state == TrialState.RUNNING else source,
        )
    return trial


def ask(
    session: Session, study_id: int, body: TrialCreate, actor: str = "api"
) -> tuple[Trial, bool]:
    """Creates (or hands out) the next trial. Returns the trial and whether it is a resume.

    The study row stays locked until the transaction ends, so concurrent asks see each
    other's trials: no number, grid point or parallel slot is handed out twice."""
    study = studies.get_study_for_update(session, study_id)
    trials = TrialRepository(session)
    # One query counts for the completion criteria and for max_parallel_trials below.
    active = trials.counts_by_state(study.id, [TrialState.RUNNING, TrialState.QUEUED])
    studies.refresh_state(session, study, unfinished=sum(active.values()))
    space = SearchSpace.from_dict(study.space)

    if body.value is not None or body.state is not None:
        return _import_finished(session, study, space, body, actor), False

    if StudyState(study.state).is_finished:
        raise Gone(f"the study is {study.state}: {study.state_reason}", field="state")
    studies.ensure_running(study)

    if body.params is not None and body.queue:
        params = space.validate(body.params, "params")
        return _new_trial(
            session,
            study,
            params,
            state=TrialState.QUEUED,
            source="user",
            actor=actor,
            budget=_budget_default(study),
        ), False

    running = active.get(TrialState.RUNNING, 0)
    max_parallel = int(study.limits["max_parallel_trials"])
    if running >= max_parallel:
        raise Conflict(
            f"{running} trials are running, the study's max_parallel_trials is {max_parallel}",
            field="limits.max_parallel_trials",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    worker = body.worker or actor

    if body.params is not None:
        params = space.validate(body.params, "params")
        return _new_trial(
            session,
            study,
            params,
            state=TrialState.RUNNING,
            source="user",
            actor=worker,
            budget=_budget_default(study),
        ), False

    # Most asks find no queued trial; the count above spares them the query.
    queued = trials.first_queued(study.id) if active.get(TrialState.QUEUED) else None
    if queued is not None:
        queued.worker = worker
        if queued.budget is not None:
            study.budget_used += queued.budget
        studies.set_trial_state(session, queued, TrialState.RUNNING, worker, "started")
        return queued, False

    strategy = strategy_for(study)
    history = DbHistory(session, study, with_intermediate=strategy.scheduler.needs_intermediate)
    budget_left = studies.budget_left(study)
    can_create = study.next_number < studies.trial_cap(study) and budget_left
    try:
        suggestion: Suggestion | None
        if can_create:
            suggestion = strategy.suggest(history)
        else:
            # No new trial may start, but a paused trial may still be promoted.
            suggestion = strategy.pending_resume(history) if budget_left else None
    except SearchExhausted:
        suggestion = None
    if suggestion is not None and suggestion.resume_trial_id is not None:
        return _resume(session, study, suggestion, worker), True
    if suggestion is None or not can_create:
        _nothing_to_hand_out(session, study)
    assert suggestion is not None
    budget = suggestion.budget if suggestion.budget is not None else _budget_default(study)
    trial = _new_trial(
        session,
        study,
        dict(suggestion.params),
        state=TrialState.RUNNING,
        source="suggested",
        actor=worker,
        budget=budget,
        extra=dict(suggestion.extra),
    )
    return trial, False


def _nothing_to_hand_out(session: Session, study: Study) -> None:
    unfinished = TrialRepository(session).count_in_states(
        study.id, [TrialState.RUNNING, TrialState.QUEUED, TrialState.PAUSED]
    )
    if unfinished:
        raise Conflict(
            "every trial of the study has been handed out; waiting for running trials to finish",
            field="limits.max_trials",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    studies.refresh_state(session, study)
    if study.state == StudyState.RUNNING:  # the strategy ran dry before the limits did
        studies.finish_study(
            session, study, StudyState.COMPLETED, "the strategy has no configs left", "tunelab"
        )
    raise Gone(f"the study is {study.state}: {study.state_reason}", field="state")


def _resume(session: Session, study: Study, suggestion: Suggestion, worker: str) -> Trial:
    trial = TrialRepository(session).get_for_update(int(suggestion.resume_trial_id or 0))
    if trial is None or trial.study_id != study.id or trial.state != TrialState.PAUSED:
        raise ConfigError("strategy", "the strategy resumed a trial that is not paused")
    old_budget = trial.budget or 0.0
    new_budget = suggestion.budget if suggestion.budget is not None else old_budget
    study.budget_used += max(0.0, new_budget - old_budget)
    trial.budget = new_budget
    trial.resumes += 1
    trial.worker = worker
    if suggestion.extra:
        trial.extra = {**(trial.extra or {}), **suggestion.extra}
    studies.set_trial_state(
        session,
        trial,
        TrialState.RUNNING,
        worker,
        f"resumed with budget {new_budget:g} (was {old_budget:g})"
        + (f": {suggestion.reason}" if suggestion.reason else ""),
        kind="resumed",
        data={"from_budget": old_budget, "to_budget": new_budget},
    )
    return trial


def _import_finished(
    session: Session, study: Study, space: SearchSpace, body: TrialCreate, actor: str
) -> Trial:
    if body.params is None:
        raise Invalid("an imported result needs its params", field="params")
    state = TrialState(body.state or "completed")
    if state == TrialState.COMPLETED and body.value is None and not body.metrics:
        raise Invalid("a completed result needs a value or metrics", field="value")
    params = space.validate(body.params, "params")
    trial = _new_trial(
        session,
        study,
        params,
        state=TrialState.RUNNING,
        source="imported",
        actor=actor,
        budget=_budget_default(study),
    )
    if body.metrics:
        MetricRepository(session).insert_points(
            trial.id, [(p.name, p.step, p.value) for p in body.metrics]
        )
    trial.value = body.value if body.value is not None else _aggregate(session, study, trial)
    studies.set_trial_state(session, trial, state, actor, "imported result")
    if state == TrialState.COMPLETED:
        studies.record_result(study, trial)
    studies.refresh_state(session, study)
    return trial


def _aggregate(session: Session, study: Study, trial: Trial) -> float | None:
    """The trial's objective from its metric points: the last step's, or the best one."""
    series = MetricRepository(session).series(trial.id, study.metric)
    if not series:
        return None
    if study.aggregate == "best":
        finite = [v for _, v in series if math.isfinite(v)]
        if not finite:
            return series[-1][1]
        return min(finite) if study.direction == "minimize" else max(finite)
    return series[-1][1]


def _closed_decision(trial_state: str, study_state: str, study_state_reason: str) -> Decision:
    """What a client hears when it reports on a trial that no longer runs."""
    if trial_state == TrialState.PAUSED:
        return Decision(Action.PAUSE, "the trial is paused")
    if StudyState(study_state).is_finished:
        return Decision(Action.STOP, f"the study is {study_state}: {study_state_reason}")
    return Decision(Action.STOP, f"the trial is {trial_state}")


def report_metrics(
    session: Session, trial_id: int, points: Sequence[MetricPointIn], actor: str = "api"
) -> Decision:
    """Stores a batch of points and decides on the trial, in the session's transaction."""
    return decide_after_report(session, store_metrics(session, trial_id, points), actor)


def store_metrics(
    session: Session, trial_id: int, points: Sequence[MetricPointIn]
) -> ReportedTrial:
    """Stores a batch of points in one statement, which also refreshes a running trial's
    heartbeat and last_step; most reports end there, with no ORM object loaded."""
    rows = [(p.name, p.step, p.value) for p in points]
    reported = MetricRepository(session).report(trial_id, rows, utcnow())
    if reported is None:
        raise TrialNotFound(trial_id)
    if rows:
        notify(session, reported.study_id, "metrics", {"trial_id": trial_id, "count": len(rows)})
    return reported


def decide_after_report(session: Session, reported: ReportedTrial, actor: str = "api") -> Decision:
    """The answer to a report: from what the report read when it can be, else from the
    scheduler, which reads the study's stored results (the new points included)."""
    trial_id = reported.trial_id
    if reported.trial_state != TrialState.RUNNING:
        return _closed_decision(
            reported.trial_state, reported.study_state, reported.study_state_reason
        )
    if (
        reported.objective_step is None
        or reported.study_state != StudyState.RUNNING
        or not registry.decides_on_results(reported.strategy, reported.early_stopping)
    ):
        return Decision.keep_going()

    # Scheduler decisions read other trials' results: serialize them per study.
    study = studies.get_study_for_update(session, reported.study_id)
    trial = TrialRepository(session).get_for_update(trial_id)
    if trial is None:  # pragma: no cover - deleted with its study since the statement above
        raise TrialNotFound(trial_id)
    if trial.state != TrialState.RUNNING:
        return _closed_decision(trial.state, study.state, study.state_reason)
    strategy = strategy_for(study)
    history = DbHistory(
        session,
        study,
        with_intermediate=strategy.scheduler.needs_intermediate,
        intermediate_for=trial.id,
    )
    record = next((r for r in history.trials() if r.id == trial.id), None)
    if record is None:  # pragma: no cover - the trial belongs to this study
        return Decision.keep_going()
    decision = strategy.on_result(history, record)
    apply_decision(session, study, trial, decision, actor="scheduler")
    return decision


def apply_decision(
    session: Session, study: Study, trial: Trial, decision: Decision, actor: str
) -> None:
    """Stores a scheduler's decision on the trial, with its rung bookkeeping."""
    if decision.rung is not None:
        trial.rung = max(trial.rung, decision.rung)
    if decision.extra:
        trial.extra = {**(trial.extra or {}), **decision.extra}
    if decision.action == Action.CONTINUE:
        if decision.reason:  # a trial promoted at a rung: say why it goes on
            EventRepository(session).record(
                study_id=study.id,
                trial_id=trial.id,
                kind="decision",
                actor=actor,
                from_state=trial.state,
                to_state=trial.state,
                reason=decision.reason,
                data={"action": decision.action.value, "rung": decision.rung},
            )
        return
    trial.value = _aggregate(session, study, trial)
    if decision.action == Action.STOP:
        studies.set_trial_state(
            session, trial, TrialState.STOPPED, actor, decision.reason, kind="decision"
        )
    else:
        studies.set_trial_state(
            session, trial, TrialState.PAUSED, actor, decision.reason, kind="decision"
        )
    studies.refresh_state(session, study)


def append_log(session: Session, trial_id: int, offset: int, text: str) -> Trial:
    """Stores a chunk of console output; a chunk re-sent at the same offset changes nothing."""
    trial = get_trial(session, trial_id)
    TrialRepository(session).append_log(trial.id, offset, text)
    notify(session, trial.study_id, "log", {"trial_id": trial.id, "offset": offset})
    return trial


def complete(session: Session, trial_id: int, body: TrialComplete, actor: str = "api") -> Trial:
    if body.log is not None:
        append_log(session, trial_id, body.log.offset, body.log.text)
    if body.metrics:
        # A stop or pause decided on these points is kept below, as it would be had they
        # come in their own request just before.
        report_metrics(session, trial_id, body.metrics, actor)
    trial = get_trial(session, trial_id)
    study = studies.get_study_for_update(session, trial.study_id)
    trial = TrialRepository(session).get_for_update(trial_id) or trial
    if trial.state in FINISHED_STATES or trial.state == TrialState.PAUSED:
        # Told already (stopped, paused or cancelled): keep the server's verdict, but a
        # client's final value of a stopped trial is still welcome.
        if trial.state == TrialState.STOPPED and body.value is not None:
            trial.value = body.value
        return trial
    if trial.state == TrialState.QUEUED:
        raise Conflict("the trial has not started", field="state")
    if body.state == "failed":
        trial.error = body.error
        return fail_or_retry(session, study, trial, actor, body.error or "reported as failed")
    value = body.value if body.value is not None else _aggregate(session, study, trial)
    if value is None:
        raise Invalid(
            f"no value given and no points of the objective metric {study.metric!r} reported",
            field="value",
        )
    trial.value = value
    studies.set_trial_state(session, trial, TrialState.COMPLETED, actor, "completed")
    studies.record_result(study, trial)
    studies.refresh_state(session, study)
    return trial


def fail_or_retry(session: Session, study: Study, trial: Trial, actor: str, reason: str) -> Trial:
    """A failed trial goes back to the queue with the same params while retries remain."""
    max_retries = int(study.limits.get("max_retries", 0))
    if (study.execution or {}).get("max_retries") is not None:
        max_retries = int(study.execution["max_retries"])  # type: ignore[index]
    if trial.retries < max_retries and study.state == StudyState.RUNNING:
        trial.retries += 1
        trial.started_at = None
        trial.worker = None
        if trial.budget is not None:
            study.budget_used -= trial.budget  # granted again when it restarts
        studies.set_trial_state(
            session,
            trial,
            TrialState.QUEUED,
            actor,
            f"{reason}; retry {trial.retries} of {max_retries}",
            kind="retried",
        )
        return trial
    studies.set_trial_state(session, trial, TrialState.FAILED, actor, reason)
    study.trials_since_improvement += 1
    studies.refresh_state(session, study)
    return trial


def heartbeat(session: Session, trial_id: int) -> Decision:
    trial = get_trial(session, trial_id)
    study = studies.get_study(session, trial.study_id)
    if trial.state != TrialState.RUNNING:
        return _closed_decision(trial.state, study.state, study.state_reason)
    trial.heartbeat_at = utcnow()
    return Decision.keep_going()


def cancel(session: Session, trial_id: int, actor: str = "api", reason: str = "") -> Trial:
    trial = get_trial(session, trial_id)
    studies.get_study_for_update(session, trial.study_id)
    trial = TrialRepository(session).get_for_update(trial_id) or trial
    if trial.state in FINISHED_STATES:
        return trial
    studies.set_trial_state(
        session, trial, TrialState.CANCELLED, actor, reason or f"cancelled by {actor}"
    )
    return trial


def retry(session: Session, trial_id: int, actor: str = "api") -> Trial:
    """Enqueues a new trial with the params of a finished one."""
    source = get_trial(session, trial_id)
    if source.state not in FINISHED_STATES:
        raise Conflict(
            f"trial {trial_id} is {source.state}; only finished trials can be retried",
            field="state",
        )
    study = studies.get_study_for_update(session, source.study_id)
    if StudyState(study.state).is_finished:
        raise Gone(f"the study is {study.state}: {study.state_reason}", field="state")
    return _new_trial(
        session,
        study,
        dict(source.params),
        state=TrialState.QUEUED,
        source="retry",
        actor=actor,
        budget=_budget_default(study),
        extra={"retry_of": source.id},
    )


def reap_stale(
    session: Session, now: datetime | None = None, alive_since: datetime | None = None
) -> int:
    """Fails (or re-queues) running trials whose heartbeat stopped; also ends studies whose
    runtime ran out. Returns the number of trials recovered."""
    now = now or utcnow()
    repo = TrialRepository(session)
    recovered = 0
    for trial in repo.stale_running(now, alive_since=alive_since):
        study = studies.get_study_for_update(session, trial.study_id)
        locked = repo.get_for_update(trial.id)
        if locked is None or locked.state != TrialState.RUNNING:
            continue
        timeout = float(study.limits.get("heartbeat_timeout_s", 300))
        reason = f"no heartbeat for {timeout:g} s"
        locked.error = reason  # so that the trial itself says why it failed
        fail_or_retry(session, study, locked, "tunelab", reason)
        recovered += 1
    from app.studies.repository import StudyRepository

    for study in StudyRepository(session).running():
        if study.limits.get("max_runtime_s") is not None:
            studies.refresh_state(session, study, now)
    return recovered
