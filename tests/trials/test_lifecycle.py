"""The trial lifecycle's pure functions (app/engine/lifecycle.py): the transition table and
what each event changes."""

from __future__ import annotations

import math

import pytest

from app.engine import lifecycle
from app.engine.base import Action, Decision, TrialRecord, TrialState
from app.engine.lifecycle import (
    TRANSITIONS,
    UNCHANGED,
    BestValue,
    IllegalTransition,
    Tally,
    TrialEvent,
)

STATES: list[TrialState | None] = [None, *TrialState]

EXPECTED = {
    (None, TrialEvent.CREATE): TrialState.QUEUED,
    (TrialState.QUEUED, TrialEvent.START): TrialState.RUNNING,
    (TrialState.QUEUED, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.RUNNING, TrialEvent.CONTINUE): TrialState.RUNNING,
    (TrialState.RUNNING, TrialEvent.PAUSE): TrialState.PAUSED,
    (TrialState.RUNNING, TrialEvent.STOP): TrialState.STOPPED,
    (TrialState.RUNNING, TrialEvent.COMPLETE): TrialState.COMPLETED,
    (TrialState.RUNNING, TrialEvent.FAIL): TrialState.FAILED,
    (TrialState.RUNNING, TrialEvent.RETRY): TrialState.QUEUED,
    (TrialState.RUNNING, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.PAUSED, TrialEvent.RESUME): TrialState.RUNNING,
    (TrialState.PAUSED, TrialEvent.CANCEL): TrialState.CANCELLED,
    (TrialState.PAUSED, TrialEvent.CLOSE): TrialState.STOPPED,
    (TrialState.STOPPED, TrialEvent.AMEND): TrialState.STOPPED,
    **{(state, TrialEvent.NOTE): state for state in TrialState},
}


def record(state: TrialState = TrialState.RUNNING, **fields: object) -> TrialRecord:
    return TrialRecord(id=7, number=7, params={"x": 1}, state=state, **fields)  # type: ignore[arg-type]


def test_the_table_is_the_expected_one():
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize("state", STATES, ids=str)
@pytest.mark.parametrize("event", list(TrialEvent), ids=str)
def test_every_pair_is_allowed_or_refused(state, event):
    if (state, event) in EXPECTED:
        assert lifecycle.target(state, event) == EXPECTED[(state, event)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            lifecycle.target(state, event)
        assert raised.value.state == state and raised.value.event == event
        assert event.value in str(raised.value)


def test_finished_trials_only_take_notes_and_a_stopped_trials_value():
    for state in (TrialState.COMPLETED, TrialState.FAILED, TrialState.CANCELLED):
        assert [e for (s, e) in TRANSITIONS if s == state] == [TrialEvent.NOTE]
    assert [e for (s, e) in TRANSITIONS if s == TrialState.STOPPED] == [
        TrialEvent.AMEND,
        TrialEvent.NOTE,
    ]


# Every pure function refuses a trial in a state its event does not leave from.
REFUSALS = [
    (lambda t: lifecycle.start(t, "w"), TrialState.RUNNING),
    (lambda t: lifecycle.resume(t, budget=3, max_budget=9, worker="w"), TrialState.RUNNING),
    (
        lambda t: lifecycle.decide(
            t, Decision(Action.STOP), curve={1.0: 1.0}, aggregate="last", direction="minimize"
        ),
        TrialState.PAUSED,
    ),
    (lambda t: lifecycle.finish(t, 1.0), TrialState.QUEUED),
    (lambda t: lifecycle.finish(t, 1.0), TrialState.COMPLETED),
    (
        lambda t: lifecycle.fail_or_retry(
            t, retries=0, max_retries=1, may_retry=True, reason="boom"
        ),
        TrialState.QUEUED,
    ),
    (lambda t: lifecycle.cancel(t, "no"), TrialState.FAILED),
    (lambda t: lifecycle.amend(t, 1.0), TrialState.COMPLETED),
    (lambda t: lifecycle.end_with_study(t, completed=True, reason="done"), TrialState.STOPPED),
]


@pytest.mark.parametrize(("call", "state"), REFUSALS)
def test_functions_refuse_illegal_moves(call, state):
    with pytest.raises(IllegalTransition):
        call(record(state))


def test_create_running_grants_its_budget_and_tells_both_steps():
    change = lifecycle.create({"x": 1}, source="suggested", budget=3.0, worker="w1", extra={"b": 0})
    assert change.state == TrialState.RUNNING and change.from_state is None
    assert [(s.event, s.kind, s.reason) for s in change.steps] == [
        (TrialEvent.CREATE, "created", "suggested config"),
        (TrialEvent.START, "state", "started"),
    ]
    assert change.steps[0].data == {"params": {"x": 1}}
    assert change.budget == 3.0 and change.budget_delta == 3.0
    assert change.worker == "w1" and change.extra == {"b": 0} and change.visible


def test_create_queued_grants_nothing_yet():
    change = lifecycle.create({"x": 1}, source="user", budget=9.0, worker="w1", queued=True)
    assert change.state == TrialState.QUEUED and len(change.steps) == 1
    assert change.budget == 9.0 and change.budget_delta == 0.0 and change.worker is None


def test_start_grants_the_queued_budget():
    change = lifecycle.start(record(TrialState.QUEUED, budget=9.0), "w2")
    assert change.state == TrialState.RUNNING and change.budget_delta == 9.0
    assert change.worker == "w2"
    assert lifecycle.start(record(TrialState.QUEUED), "w").budget_delta == 0.0


def test_resume_grants_only_the_added_budget():
    paused = record(TrialState.PAUSED, budget=1.0, extra={"bracket": 0})
    change = lifecycle.resume(
        paused, budget=3.0, max_budget=9.0, worker="w", extra={"promoted": 1}, reason="top 1/3"
    )
    assert change.state == TrialState.RUNNING and change.event == TrialEvent.RESUME
    assert change.budget == 3.0 and change.budget_delta == 2.0 and change.resumes_delta == 1
    assert change.extra == {"bracket": 0, "promoted": 1}
    assert change.reason == "resumed with budget 3 (was 1): top 1/3"
    assert change.steps[0].kind == "resumed"
    assert change.steps[0].data == {"from_budget": 1.0, "to_budget": 3.0}


def test_resume_clamps_to_the_fidelity_max_and_never_takes_budget_back():
    paused = record(TrialState.PAUSED, budget=3.0)
    clamped = lifecycle.resume(paused, budget=27.0, max_budget=9.0, worker="w")
    assert clamped.budget == 9.0 and clamped.budget_delta == 6.0
    lower = lifecycle.resume(paused, budget=1.0, max_budget=9.0, worker="w")
    assert lower.budget == 1.0 and lower.budget_delta == 0.0
    same = lifecycle.resume(paused, budget=None, max_budget=None, worker="w")
    assert same.budget == 3.0 and same.budget_delta == 0.0 and same.extra is UNCHANGED


@pytest.mark.parametrize(
    ("aggregate", "direction", "expected"),
    [
        ("last", "minimize", 0.4),
        ("best", "minimize", 0.2),
        ("best", "maximize", 0.9),
        ("last", "maximize", 0.4),
    ],
)
def test_aggregate_value(aggregate, direction, expected):
    curve = {1.0: 0.9, 2.0: 0.2, 3.0: math.nan, 4.0: 0.4}
    assert lifecycle.aggregate_value(curve, aggregate, direction) == expected


def test_aggregate_value_without_finite_points_or_points():
    assert math.isinf(lifecycle.aggregate_value({1.0: math.inf}, "best", "minimize") or 0)
    assert lifecycle.aggregate_value({}, "best", "minimize") is None


def test_decide_continue_keeps_rung_bookkeeping_and_logs_only_with_a_reason():
    running = record(rung=0, extra={"rungs": {"0": 0.5}})
    quiet = lifecycle.decide(
        running, Decision.keep_going(), curve={}, aggregate="last", direction="minimize"
    )
    assert quiet.state == TrialState.RUNNING and not quiet.steps[0].logged
    assert not quiet.visible
    promoted = lifecycle.decide(
        running,
        Decision(Action.CONTINUE, "continued at rung 1", rung=1, extra={"rungs": {"1": 0.3}}),
        curve={},
        aggregate="last",
        direction="minimize",
    )
    assert promoted.steps[0].logged and promoted.steps[0].kind == "decision"
    assert promoted.steps[0].data == {"action": "continue", "rung": 1}
    assert promoted.rung == 1 and promoted.extra == {"rungs": {"1": 0.3}}
    assert promoted.value is UNCHANGED and promoted.visible
    lower = lifecycle.decide(
        record(rung=2),
        Decision(Action.CONTINUE, rung=1),
        curve={},
        aggregate="last",
        direction="minimize",
    )
    assert lower.rung is UNCHANGED  # a rung is never lowered


@pytest.mark.parametrize(("aggregate", "expected"), [("last", 0.5), ("best", 0.3)])
def test_decide_stop_and_pause_take_the_value_per_aggregate(aggregate, expected):
    curve = {1.0: 0.3, 3.0: 0.5}
    stop = lifecycle.decide(
        record(),
        Decision(Action.STOP, "below the cutoff", rung=1),
        curve=curve,
        aggregate=aggregate,
        direction="minimize",
    )
    assert stop.state == TrialState.STOPPED and stop.value == expected and stop.rung == 1
    assert stop.reason == "below the cutoff" and stop.steps[0].kind == "decision"
    pause = lifecycle.decide(
        record(),
        Decision(Action.PAUSE, "paused"),
        curve=curve,
        aggregate=aggregate,
        direction="minimize",
    )
    assert pause.state == TrialState.PAUSED and pause.value == expected
    assert pause.budget is UNCHANGED and pause.budget_delta == 0.0


def test_retry_gives_the_budget_back_until_retries_run_out():
    running = record(budget=9.0)
    retried = lifecycle.fail_or_retry(
        running, retries=0, max_retries=2, may_retry=True, reason="OOM"
    )
    assert retried.state == TrialState.QUEUED and retried.event == TrialEvent.RETRY
    assert retried.budget_delta == -9.0 and retried.retries_delta == 1 and retried.restart
    assert retried.worker is None and retried.reason == "OOM; retry 1 of 2"
    assert retried.steps[0].kind == "retried" and retried.tally is None
    failed = lifecycle.fail_or_retry(
        running, retries=2, max_retries=2, may_retry=True, reason="OOM"
    )
    assert failed.state == TrialState.FAILED and failed.tally == Tally.FAILURE
    assert failed.budget_delta == 0.0 and failed.reason == "OOM"
    ended = lifecycle.fail_or_retry(running, retries=0, max_retries=2, may_retry=False, reason="x")
    assert ended.state == TrialState.FAILED


def test_finish_amend_imported_and_cancel():
    done = lifecycle.finish(record(), 0.25)
    assert done.state == TrialState.COMPLETED and done.value == 0.25 and done.tally == Tally.RESULT
    amended = lifecycle.amend(record(TrialState.STOPPED, value=0.5), 0.4)
    assert amended.state == TrialState.STOPPED and amended.value == 0.4
    assert not amended.steps[0].logged and amended.visible
    imported = lifecycle.imported(record(), TrialState.FAILED, None)
    assert imported.state == TrialState.FAILED and imported.tally is None
    assert imported.reason == "imported result"
    assert lifecycle.imported(record(), TrialState.COMPLETED, 1.0).tally == Tally.RESULT
    cancelled = lifecycle.cancel(record(TrialState.QUEUED), "by admin")
    assert cancelled.state == TrialState.CANCELLED and cancelled.budget_delta == 0.0


def test_note_merges_extra_whatever_the_state():
    for state in TrialState:
        change = lifecycle.note(record(state, extra={"bracket": 1}), {"parent": {"trial_id": 3}})
        assert change.state == state and not change.steps[0].logged and change.visible
        assert change.extra == {"bracket": 1, "parent": {"trial_id": 3}}


def test_end_with_study():
    paused = record(TrialState.PAUSED)
    closed = lifecycle.end_with_study(paused, completed=True, reason="study completed: done")
    assert closed.state == TrialState.STOPPED
    assert closed.reason == "study completed: done (never promoted)"
    stopped = lifecycle.end_with_study(paused, completed=False, reason="study stopped: x")
    assert stopped.state == TrialState.CANCELLED and stopped.reason == "study stopped: x"
    running = lifecycle.end_with_study(record(), completed=True, reason="r")
    assert running.state == TrialState.CANCELLED


def test_tally():
    start = BestValue(None, None, 0)
    first = lifecycle.tally(start, Tally.RESULT, 0.5, 1, "minimize")
    assert first == BestValue(0.5, 1, 0, improved=True)
    worse = lifecycle.tally(first, Tally.RESULT, 0.7, 2, "minimize")
    assert worse == BestValue(0.5, 1, 1)
    better_max = lifecycle.tally(first, Tally.RESULT, 0.7, 2, "maximize")
    assert better_max.value == 0.7 and better_max.trial_id == 2
    assert lifecycle.tally(worse, Tally.FAILURE, None, 3, "minimize").trials_since_improvement == 2
    assert lifecycle.tally(worse, Tally.RESULT, math.nan, 3, "minimize") == BestValue(0.5, 1, 2)
    assert lifecycle.tally(worse, None, 0.1, 3, "minimize") is worse
