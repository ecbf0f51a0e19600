"""Trial orchestration: ask, report, tell, heartbeats, cancellation and recovery."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Conflict, Gone, Invalid, TrialNotFound
from app.core.notes import MAX_TAGS
from app.core.notify import notify
from app.db.types import utcnow
from app.engine import lifecycle as rules
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
from app.metrics.repository import MetricRepository, ReportedTrial
from app.metrics.schemas import MetricPointIn
from app.studies import service as studies
from app.studies.models import Study, StudyState
from app.studies.settings import study_settings
from app.trials import lifecycle, results
from app.trials.history import DbHistory, strategy_for
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.trials.schemas import TrialComplete, TrialCreate, TrialUpdate
from app.webhooks import outbox

RETRY_AFTER_S = "2"


# Trial id -> study id, for the trials this process handed out or looked up: a tell
# waits for its study's turn (app/db/session.Turns) before its transaction starts, and a
# trial never changes study. Bounded; the oldest entries go first. A stale entry (SQLite
# may reuse a deleted trial's id) only queues a tell behind another study: the row lock,
# not the turn, is what keeps the tell correct.
_STUDY_OF: OrderedDict[int, int] = OrderedDict()
_STUDY_OF_LOCK = threading.Lock()
STUDY_OF_MAX = 100_000


def remember_study_of(trial: Trial) -> None:
    with _STUDY_OF_LOCK:
        _STUDY_OF[trial.id] = trial.study_id
        while len(_STUDY_OF) > STUDY_OF_MAX:
            _STUDY_OF.popitem(last=False)


def known_study_of(trial_id: int) -> int | None:
    return _STUDY_OF.get(trial_id)


def study_of(session: Session, trial_id: int) -> int | None:
    """The trial's study id (None for an unknown trial: the request's work answers 404)."""
    trial = TrialRepository(session).get(trial_id)
    if trial is None:
        return None
    remember_study_of(trial)
    return trial.study_id


def get_trial(session: Session, trial_id: int) -> Trial:
    trial = TrialRepository(session).get(trial_id)
    if trial is None:
        raise TrialNotFound(trial_id)
    return trial


def _budget_default(study: Study) -> float | None:
    """A trial's budget unless its strategy sets one, and the most a resume may grant."""
    fidelity = study_settings(study).fidelity
    return fidelity.max if fidelity is not None else None


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
    change = rules.create(
        params,
        source=source,
        budget=budget,
        worker=actor,
        queued=state == TrialState.QUEUED,
        extra=extra,
    )
    return lifecycle.insert(session, study, params, change, actor, source)


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

    if body.value is not None or body.values is not None or body.state is not None:
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
    max_parallel = study_settings(study).limits.max_parallel_trials
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
        lifecycle.apply(session, study, queued, rules.start(queued, worker), worker)
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
    change = rules.resume(
        trial,
        budget=suggestion.budget,
        max_budget=_budget_default(study),
        worker=worker,
        extra=suggestion.extra,
        reason=suggestion.reason,
        params=suggestion.params,
        events=suggestion.events,
    )
    lifecycle.apply(session, study, trial, change, worker)
    return trial


def _import_finished(
    session: Session, study: Study, space: SearchSpace, body: TrialCreate, actor: str
) -> Trial:
    if body.params is None:
        raise Invalid("an imported result needs its params", field="params")
    state = TrialState(body.state or "completed")
    given = body.value is not None or body.values is not None  # values: several objectives
    if state == TrialState.COMPLETED and not given and not body.metrics:
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
    # Several objectives / constraints: app/trials/results.py (body.values or points).
    value, more = results.of_trial(session, study, trial.id, body.value, body.values)
    lifecycle.apply(session, study, trial, rules.imported(trial, state, value, more), actor)
    studies.refresh_state(session, study)
    return trial


def _curve(session: Session, study: Study, trial: Trial) -> dict[float, float]:
    """The trial's objective metric by step, as stored."""
    return dict(MetricRepository(session).series(trial.id, study.metric))


def _aggregate(session: Session, study: Study, trial: Trial) -> float | None:
    """The trial's objective from its metric points: the last step's, or the best one."""
    return rules.aggregate_value(_curve(session, study, trial), study.aggregate, study.direction)


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


def answer_without_decision(reported: ReportedTrial) -> Decision | None:
    """The answer to a report from what its statement read, with no SQL; None when the
    study's scheduler must decide (`decide_after_report`, under the study's row lock)."""
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
    return None


def decide_after_report(session: Session, reported: ReportedTrial, actor: str = "api") -> Decision:
    """The answer to a report: from what the report read when it can be, else from the
    scheduler, which reads the study's stored results (the new points included)."""
    trial_id = reported.trial_id
    answer = answer_without_decision(reported)
    if answer is not None:
        return answer

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
    record = history.get(trial.id)
    if record is None:  # pragma: no cover - the trial belongs to this study
        return Decision.keep_going()
    decision = strategy.on_result(history, record)
    apply_decision(session, study, trial, decision, actor="scheduler")
    return decision


def apply_decision(
    session: Session, study: Study, trial: Trial, decision: Decision, actor: str
) -> None:
    """Stores a scheduler's decision on the trial, with its rung bookkeeping."""
    ends = decision.action != Action.CONTINUE
    # The points are read only when the run ends: its value comes from them.
    curve = _curve(session, study, trial) if ends else {}
    # A stopped trial's other objectives and constraints, from its points.
    more = results.of_trial(session, study, trial.id, None, None, strict=False)[1] if ends else None
    change = rules.decide(
        trial,
        decision,
        curve=curve,
        aggregate=study.aggregate,
        direction=study.direction,
        results=more,
    )
    lifecycle.apply(session, study, trial, change, actor)
    if ends:
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
            lifecycle.apply(session, study, trial, rules.amend(trial, body.value), actor)
        return trial
    if trial.state == TrialState.QUEUED:
        raise Conflict("the trial has not started", field="state")
    if body.state == "failed":
        trial.error = body.error
        return fail_or_retry(session, study, trial, actor, body.error or "reported as failed")
    # Several objectives / constraints: app/trials/results.py (body.values or points).
    value, more = results.of_trial(session, study, trial.id, body.value, body.values)
    if value is None:
        raise Invalid(
            f"no value given and no points of the objective metric {study.metric!r} reported",
            field="value",
        )
    lifecycle.apply(session, study, trial, rules.finish(trial, value, results=more), actor)
    studies.refresh_state(session, study)
    return trial


def fail_or_retry(session: Session, study: Study, trial: Trial, actor: str, reason: str) -> Trial:
    """A failed trial goes back to the queue with the same params while retries remain."""
    settings = study_settings(study)
    max_retries = settings.limits.max_retries
    if settings.execution is not None and settings.execution.max_retries is not None:
        max_retries = settings.execution.max_retries
    change = rules.fail_or_retry(
        trial,
        retries=trial.retries,
        max_retries=max_retries,
        may_retry=study.state == StudyState.RUNNING,
        reason=reason,
    )
    lifecycle.apply(session, study, trial, change, actor)
    if change.state == TrialState.FAILED:
        studies.refresh_state(session, study)
    return trial


def note_extra(session: Session, trial: Trial, extra: dict[str, Any], actor: str = "api") -> None:
    """Adds `extra` to a trial's strategy data (a follow-up trial's origin)."""
    study = studies.get_study_for_update(session, trial.study_id)
    lifecycle.apply(session, study, trial, rules.note(trial, extra), actor)


def heartbeat(session: Session, trial_id: int) -> Decision:
    trial = get_trial(session, trial_id)
    study = studies.get_study(session, trial.study_id)
    if trial.state != TrialState.RUNNING:
        return _closed_decision(trial.state, study.state, study.state_reason)
    trial.heartbeat_at = utcnow()
    return Decision.keep_going()


def cancel(session: Session, trial_id: int, actor: str = "api", reason: str = "") -> Trial:
    trial = get_trial(session, trial_id)
    study = studies.get_study_for_update(session, trial.study_id)
    trial = TrialRepository(session).get_for_update(trial_id) or trial
    if trial.state in FINISHED_STATES:
        return trial
    change = rules.cancel(trial, reason or f"cancelled by {actor}")
    lifecycle.apply(session, study, trial, change, actor)
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
    lost: list[outbox.LostTrial] = []
    for trial in repo.stale_running(now, alive_since=alive_since):
        study = studies.get_study_for_update(session, trial.study_id)
        locked = repo.get_for_update(trial.id)
        if locked is None or locked.state != TrialState.RUNNING:
            continue
        timeout = study_settings(study).limits.heartbeat_timeout_s
        reason = f"no heartbeat for {timeout:g} s"
        locked.error = reason  # so that the trial itself says why it failed
        worker = locked.worker or "unnamed runner"
        fail_or_retry(session, study, locked, "tunelab", reason)
        lost.append(outbox.LostTrial(worker, locked, study, reason))
        recovered += 1
    # Webhooks: one "worker.lost" per silent worker, listing its trials.
    outbox.workers_lost(session, lost)
    from app.studies.repository import StudyRepository

    for study in StudyRepository(session).running():
        if study_settings(study).limits.max_runtime_s is not None:
            # Ending the study changes its trials: under its row lock, as every change is.
            locked_study = studies.get_study_for_update(session, study.id)
            studies.refresh_state(session, locked_study, now)
    return recovered


def annotate(session: Session, trial_id: int, body: TrialUpdate, editor: str = "api") -> Trial:
    """Sets a trial's notes and tags. Not a lifecycle change: no study lock, no event,
    and `history_version` stays (strategies never see notes or tags); open dashboards
    hear of it as a "trial" change with `annotated: true`."""
    edits_tags = body.add_tags is not None or body.remove_tags is not None
    if body.tags is not None and edits_tags:
        raise Invalid(
            "give either tags (the whole list) or add_tags / remove_tags", field="add_tags"
        )
    if edits_tags:
        # Edited as the tags are when this write lands: the row is locked (PostgreSQL;
        # SQLite's writers take turns), so concurrent edits all count.
        trial = TrialRepository(session).get_for_update(trial_id) or get_trial(session, trial_id)
    else:
        trial = get_trial(session, trial_id)
    changes: dict[str, Any] = {}
    if body.notes is not None:
        changes.update(notes=body.notes, notes_updated_at=utcnow(), notes_updated_by=editor)
    if body.tags is not None:
        changes["tags"] = list(body.tags)
    if edits_tags:
        removed = {t.strip() for t in body.remove_tags or ()}
        kept = [t for t in trial.tags or [] if t not in removed]
        tags = kept + [t for t in body.add_tags or () if t not in kept]
        if len(tags) > MAX_TAGS:
            raise Invalid(
                f"the trial would have {len(tags)} tags; it may have at most {MAX_TAGS}",
                field="add_tags",
            )
        changes["tags"] = tags
    if changes:
        TrialRepository(session).annotate(trial, changes)
        notify(
            session,
            trial.study_id,
            "trial",
            {"id": trial.id, "trial_id": trial.id, "annotated": True, "fields": sorted(changes)},
        )
    return trial


def page_trials(
    session: Session,
    study_id: int,
    states: Sequence[str] | None,
    order_by: str,
    limit: int,
    cursor: str | None,
    tag: str | None = None,
) -> tuple[list[Trial], str | None]:
    """A page of the study's trials and the cursor of the next one (None at the end);
    `tag`: only the trials tagged so."""
    studies.get_study(session, study_id)
    try:
        return TrialRepository(session).page(study_id, states, order_by, limit, cursor, tag)
    except (ValueError, TypeError) as exc:
        raise Invalid("the cursor is not one this server gave out", field="cursor") from exc


def read_log(session: Session, trial_id: int, offset: int, limit_bytes: int) -> tuple[str, int]:
    """The console output from `offset` up to the first chunk not yet received, and the
    offset after it."""
    return TrialRepository(session).read_log(trial_id, offset, limit_bytes)


def log_end(session: Session, trial_id: int) -> int:
    """The byte offset after the trial's last stored chunk of console output: a resumed or
    retried run continues its log there."""
    trial = get_trial(session, trial_id)
    return TrialRepository(session).log_end(trial.id)
