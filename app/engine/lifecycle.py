"""A trial's life: its states, the moves between them, and what each move changes.

Every change of a trial's state, value, budget, rung or strategy data is one of the pure
functions below. Each takes what it needs of the trial (`TrialFacts`: the engine's
`TrialRecord` or the database row alike) and plain values, checks the move against
`TRANSITIONS`, and returns a `Change` describing what to write: the new state, value and
budget, the study's budget change, the rung and `extra` bookkeeping, and the event's kind
and reason. Nothing here writes anything. The API applies a `Change` to the rows, the event
log and the live notes in one function (`app.trials.lifecycle.apply`); `MemoryStudy`
applies it to in-memory records. So the strategy contract suite, which runs on
`MemoryStudy`, tests the same bookkeeping the API runs.

This module lives in the engine rather than in `app/trials`: `MemoryStudy` calls it, the
engine imports nothing outside itself (no SQLAlchemy, FastAPI or HTTP client, and no other
`app` package), and `app/trials` may import the engine, never the reverse.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from app.engine.base import Action, Decision, TrialState, is_better


class TrialEvent(enum.StrEnum):
    CREATE = "create"  # a new trial enters the queue
    START = "start"  # a queued trial is handed to a worker
    RESUME = "resume"  # a paused trial is handed out again with a larger budget
    CONTINUE = "continue"  # a scheduler lets a running trial go on (rung bookkeeping)
    PAUSE = "pause"  # a scheduler pauses a running trial at a rung
    STOP = "stop"  # a scheduler ends a running trial early
    COMPLETE = "complete"  # the trial finished with its value
    FAIL = "fail"  # the trial failed, no retry left
    RETRY = "retry"  # the trial failed and goes back to the queue with the same params
    CANCEL = "cancel"  # a person, or the study's end, cancels an unfinished trial
    CLOSE = "close"  # the study completed while the trial waited paused: it ends stopped
    AMEND = "amend"  # a client's final value for a trial the scheduler stopped
    NOTE = "note"  # data noted in a trial's `extra` (where it came from), in any state


# (state before, event) -> state after. `None`: the trial does not exist yet. Any pair not
# listed is refused with IllegalTransition.
TRANSITIONS: Mapping[tuple[TrialState | None, TrialEvent], TrialState] = {
    (None, TrialEvent.CREATE): TrialState.QUEUED,
    (TrialState.QUEUED, TrialEvent.START): TrialState.RUNNING,
    (TrialState.PAUSED, TrialEvent.RESUME): TrialState.RUNNING,
    (TrialState.RUNNING, TrialEvent.CONTINUE): TrialState.RUNNING,
    (TrialState.RUNNING, TrialEvent.PAUSE): TrialState.PAUSED,
    (TrialState.RUNNING, TrialEvent.STOP): TrialState.STOPPED,
    (TrialState.RUNNING, TrialEvent.COMPLETE): TrialState.COMPLETED,
    (TrialState.RUNNING, TrialEvent.FAIL): TrialState.FAILED,
    (TrialState.RUNNING, TrialEvent.RETRY): TrialState.QUEUED,
    (TrialState.QUEUED, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.RUNNING, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.PAUSED, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.PAUSED, TrialEvent.CLOSE): TrialState.STOPPED,
    (TrialState.STOPPED, TrialEvent.AMEND): TrialState.STOPPED,
    **{(state, TrialEvent.NOTE): state for state in TrialState},
}


class IllegalTransition(Exception):
    """A move the table does not allow from the trial's state (a 409 on `state` in the API)."""

    def __init__(self, state: TrialState | None, event: TrialEvent) -> None:
        self.state = state
        self.event = event
        where = "a trial that does not exist yet" if state is None else f"a {state} trial"
        super().__init__(f"cannot {event.value} {where}")


def target(state: str | None, event: TrialEvent) -> TrialState:
    """The state `event` leads to from `state`; raises IllegalTransition if it is not legal."""
    current = None if state is None else TrialState(state)
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(current, event) from None


class Unchanged(enum.Enum):
    """Marks a field a Change leaves as it is (None is a value some fields take)."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


class Tally(enum.StrEnum):
    """What an ending means for the study's best value and its patience counter."""

    RESULT = "result"  # compared with the best value (max_trials_without_improvement)
    FAILURE = "failure"  # one more trial without improvement


@dataclass(frozen=True)
class Step:
    """One legal move, recorded as one event on the trial unless `logged` is False."""

    event: TrialEvent
    from_state: TrialState | None
    to_state: TrialState
    reason: str
    kind: str  # the event log's kind: created, state, decision, resumed, retried
    data: Mapping[str, Any] | None = None
    logged: bool = True


@dataclass(frozen=True)
class Change:
    """What an event changes. Fields left UNCHANGED are not written."""

    steps: tuple[Step, ...]
    value: float | Unchanged | None = UNCHANGED
    # Several objectives (`value` is the first) and the constraint metrics' values.
    values: tuple[float, ...] | Unchanged | None = UNCHANGED
    constraint_values: tuple[float | None, ...] | Unchanged | None = UNCHANGED
    budget: float | Unchanged | None = UNCHANGED
    rung: int | Unchanged = UNCHANGED
    extra: Mapping[str, Any] | Unchanged = UNCHANGED  # the whole new mapping, merged
    # New hyperparameters of a resumed trial (population-based training's explore).
    params: Mapping[str, Any] | Unchanged = UNCHANGED
    worker: str | Unchanged | None = UNCHANGED
    budget_delta: float = 0.0  # fidelity units added to the study's budget_used
    retries_delta: int = 0
    resumes_delta: int = 0
    restart: bool = False  # the trial starts afresh: its start time is forgotten (a retry)
    tally: Tally | None = None

    @property
    def event(self) -> TrialEvent:
        return self.steps[-1].event

    @property
    def from_state(self) -> TrialState | None:
        return self.steps[0].from_state

    @property
    def state(self) -> TrialState:
        return self.steps[-1].to_state

    @property
    def reason(self) -> str:
        return self.steps[-1].reason

    @property
    def visible(self) -> bool:
        """Whether a strategy can see it (it bumps the study's history version)."""
        return (
            self.from_state != self.state
            or self.value is not UNCHANGED
            or self.values is not UNCHANGED
            or self.constraint_values is not UNCHANGED
            or self.budget is not UNCHANGED
            or self.rung is not UNCHANGED
            or self.extra is not UNCHANGED
            or self.params is not UNCHANGED
        )


class TrialFacts(Protocol):
    """What the functions read of a trial: a TrialRecord or a database row."""

    @property
    def state(self) -> str: ...

    @property
    def budget(self) -> float | None: ...

    @property
    def rung(self) -> int: ...

    @property
    def extra(self) -> Mapping[str, Any]: ...


def _step(
    trial_state: str | None,
    event: TrialEvent,
    reason: str,
    kind: str = "state",
    data: Mapping[str, Any] | None = None,
    logged: bool = True,
) -> Step:
    before = None if trial_state is None else TrialState(trial_state)
    return Step(event, before, target(trial_state, event), reason, kind, data, logged)


def _merged(extra: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, Any]:
    return {**(extra or {}), **more}


def create(
    params: Mapping[str, Any],
    *,
    source: str,
    budget: float | None,
    worker: str | None = None,
    queued: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Change:
    """A new trial: queued, or started at once for `worker`. A started trial's budget is
    granted now; a queued one's when it starts."""
    steps = [
        _step(None, TrialEvent.CREATE, f"{source} config", "created", {"params": dict(params)})
    ]
    if not queued:
        steps.append(_step(TrialState.QUEUED, TrialEvent.START, "started"))
    return Change(
        steps=tuple(steps),
        budget=budget,
        extra=dict(extra or {}),
        worker=None if queued else worker,
        budget_delta=0.0 if queued or budget is None else budget,
    )


def start(trial: TrialFacts, worker: str) -> Change:
    """A queued trial handed to `worker`; its budget is granted now."""
    return Change(
        steps=(_step(trial.state, TrialEvent.START, "started"),),
        worker=worker,
        budget_delta=trial.budget or 0.0,
    )


def resume(
    trial: TrialFacts,
    *,
    budget: float | None,
    max_budget: float | None,
    worker: str | None,
    extra: Mapping[str, Any] | None = None,
    reason: str = "",
    params: Mapping[str, Any] | None = None,
    events: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
) -> Change:
    """A paused trial handed out again. The new budget (`budget`, else the one it had) is
    clamped to `max_budget` (the fidelity's max); only the budget added is granted.
    `params`: its new hyperparameters, when they change (population-based training);
    `events` (kind, reason, data): recorded before the resume, the trial still paused."""
    old = trial.budget or 0.0
    new = budget if budget is not None else old
    if max_budget is not None:
        new = min(new, max_budget)
    because = f"resumed with budget {new:g} (was {old:g})" + (f": {reason}" if reason else "")
    before = getattr(trial, "params", None)
    changed = params is not None and dict(params) != dict(before or {})
    notes = tuple(
        _step(trial.state, TrialEvent.NOTE, why, kind, dict(data)) for kind, why, data in events
    )
    return Change(
        steps=(
            *notes,
            _step(
                trial.state,
                TrialEvent.RESUME,
                because,
                "resumed",
                {"from_budget": old, "to_budget": new}
                | ({"params": dict(params or {})} if changed else {}),
            ),
        ),
        budget=new,
        params=dict(params or {}) if changed else UNCHANGED,
        extra=_merged(trial.extra, extra) if extra else UNCHANGED,
        worker=worker,
        budget_delta=max(0.0, new - old),
        resumes_delta=1,
    )


def aggregate_value(
    curve: Mapping[float, float],
    aggregate: Literal["last", "best"] | str,
    direction: Literal["minimize", "maximize"] | str,
) -> float | None:
    """A trial's objective from its points by step: the last step's value, or the best
    finite one (the last one when none is finite). None without points."""
    if not curve:
        return None
    last = curve[max(curve)]
    if aggregate == "best":
        finite = [v for v in curve.values() if math.isfinite(v)]
        if finite:
            return min(finite) if direction == "minimize" else max(finite)
    return last


def decide(
    trial: TrialFacts,
    decision: Decision,
    *,
    curve: Mapping[float, float],
    aggregate: str,
    direction: str,
    results: Results | None = None,
) -> Change:
    """A scheduler's decision on a running trial. Its rung (never lowered) and `extra` are
    kept whatever the action; a stopped or paused trial gets the value of its curve (the
    objective by step) per the study's `aggregate`."""
    rung: int | Unchanged = UNCHANGED
    if decision.rung is not None and decision.rung > trial.rung:
        rung = decision.rung
    extra = _merged(trial.extra, decision.extra) if decision.extra else UNCHANGED
    if decision.action == Action.CONTINUE:
        step = _step(
            trial.state,
            TrialEvent.CONTINUE,
            decision.reason,
            "decision",
            {"action": decision.action.value, "rung": decision.rung},
            # A trial promoted at a rung says why it goes on; a plain "go on" is not news.
            logged=bool(decision.reason),
        )
        return Change(steps=(step,), rung=rung, extra=extra)
    event = TrialEvent.STOP if decision.action == Action.STOP else TrialEvent.PAUSE
    more = results.fields() if results is not None else {}
    return Change(
        steps=(_step(trial.state, event, decision.reason, "decision"),),
        value=aggregate_value(curve, aggregate, direction),
        rung=rung,
        extra=extra,
        **more,
    )


@dataclass(frozen=True)
class Results:
    """A multi-objective or constrained trial's results beside its `value`."""

    values: tuple[float, ...] | None = None
    constraint_values: tuple[float | None, ...] | None = None

    def fields(self) -> dict[str, Any]:
        return {"values": self.values, "constraint_values": self.constraint_values}


def finish(
    trial: TrialFacts,
    value: float | None,
    reason: str = "completed",
    results: Results | None = None,
) -> Change:
    """A running trial completed with its value (and, with several objectives or
    constraints, all of its results)."""
    more = results.fields() if results is not None else {}
    return Change(
        steps=(_step(trial.state, TrialEvent.COMPLETE, reason),),
        value=value,
        tally=Tally.RESULT,
        **more,
    )


def fail_or_retry(
    trial: TrialFacts, *, retries: int, max_retries: int, may_retry: bool, reason: str
) -> Change:
    """A running trial failed. While retries remain (`retries` used of `max_retries`) and
    `may_retry` (the study runs), it goes back to the queue with the same params: its
    budget is given back, to be granted again when it restarts."""
    if retries < max_retries and may_retry:
        return Change(
            steps=(
                _step(
                    trial.state,
                    TrialEvent.RETRY,
                    f"{reason}; retry {retries + 1} of {max_retries}",
                    "retried",
                ),
            ),
            worker=None,
            budget_delta=-(trial.budget or 0.0),
            retries_delta=1,
            restart=True,
        )
    return fail(trial, reason, tally=Tally.FAILURE)


def fail(trial: TrialFacts, reason: str, tally: Tally | None = None) -> Change:
    """A running trial failed for good (`tally`: whether it counts as a trial without
    improvement)."""
    return Change(steps=(_step(trial.state, TrialEvent.FAIL, reason),), tally=tally)


def imported(
    trial: TrialFacts, state: TrialState, value: float | None, results: Results | None = None
) -> Change:
    """The end of an imported result (created running): completed or failed, with its value."""
    event = TrialEvent.COMPLETE if state == TrialState.COMPLETED else TrialEvent.FAIL
    more = results.fields() if results is not None else {}
    return Change(
        steps=(_step(trial.state, event, "imported result"),),
        value=value,
        tally=Tally.RESULT if event == TrialEvent.COMPLETE else None,
        **more,
    )


def amend(trial: TrialFacts, value: float, results: Results | None = None) -> Change:
    """A client's own final value for a trial the scheduler stopped: it replaces the one
    taken from its points."""
    more = results.fields() if results is not None else {}
    return Change(
        steps=(_step(trial.state, TrialEvent.AMEND, "final value", logged=False),),
        value=value,
        **more,
    )


def note(trial: TrialFacts, extra: Mapping[str, Any]) -> Change:
    """Data added to a trial's `extra` (a follow-up trial's origin, say); its state stays."""
    return Change(
        steps=(_step(trial.state, TrialEvent.NOTE, "", "note", logged=False),),
        extra=_merged(trial.extra, extra),
    )


def cancel(trial: TrialFacts, reason: str) -> Change:
    return Change(steps=(_step(trial.state, TrialEvent.CANCEL, reason),))


def end_with_study(trial: TrialFacts, *, completed: bool, reason: str) -> Change:
    """An unfinished trial of a study that ends. A paused trial of a completed study has a
    result at its rung: it ends stopped, and its value counts. Any other is cancelled."""
    if completed and trial.state == TrialState.PAUSED:
        return Change(steps=(_step(trial.state, TrialEvent.CLOSE, f"{reason} (never promoted)"),))
    return cancel(trial, reason)


@dataclass(frozen=True)
class BestValue:
    """The study's best value and its patience counter, after a trial's ending."""

    value: float | None
    trial_id: int | None
    trials_since_improvement: int
    improved: bool = False


def tally(
    best: BestValue, kind: Tally | None, value: float | None, trial_id: int, direction: str
) -> BestValue:
    """The study's best value after a trial ended as `kind`."""
    if kind is None:
        return best
    since = best.trials_since_improvement + 1
    if kind == Tally.FAILURE or value is None or not math.isfinite(value):
        return BestValue(best.value, best.trial_id, since)
    if is_better(value, best.value, "minimize" if direction == "minimize" else "maximize"):
        return BestValue(value, trial_id, 0, improved=True)
    return BestValue(best.value, best.trial_id, since)
