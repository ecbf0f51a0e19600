"""The history's incremental indexes answer as a recomputation over every trial does."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict

import pytest

from app.engine.base import Direction, TrialRecord, TrialState, oriented
from app.engine.index import (
    CURVE_STATES,
    HistoryIndex,
    Without,
    bracket_of,
    config_key,
    kth_smallest,
    rank_key,
    rung_results,
)
from app.engine.memory import MemoryHistory

STATES = list(TrialState)
VALUES = [0.1, 0.2, 0.2, 0.5, 1.0, 3.0, math.nan, math.inf, -math.inf, None]


def _value(rng: random.Random) -> float | None:
    return rng.choice(VALUES) if rng.random() < 0.3 else rng.uniform(-2, 2)


def _record(rng: random.Random, trial_id: int) -> TrialRecord:
    rungs = {str(r): _value(rng) for r in range(rng.randint(0, 3))}
    extra: dict = {"bracket": rng.randint(0, 2)}
    if rungs:
        extra["rungs"] = rungs
    if rng.random() < 0.3:
        extra["gp_theta"] = [rng.random()]
    steps = sorted(rng.sample([1.0, 2.0, 3.0, 4.5, 9.0], rng.randint(0, 5)))
    return TrialRecord(
        id=trial_id,
        number=trial_id,
        params={"x": rng.randint(0, 4), "c": rng.choice("ab")},
        state=rng.choice(STATES),
        value=_value(rng),
        rung=rng.randint(-1, 3),
        intermediate={s: v for s in steps if (v := _value(rng)) is not None},
        extra=extra,
    )


def _placed(value: float | None, direction: Direction) -> float:
    if value is None or not math.isfinite(value):
        return math.inf
    return oriented(value, direction)


def _check(index: HistoryIndex, records: list[TrialRecord], direction: Direction) -> None:
    rungs: dict[tuple[int, int], list[float]] = defaultdict(list)
    any_bracket: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    paused: dict[tuple[int, int], list[tuple[float, int, int]]] = defaultdict(list)
    averages: dict[float, list[float]] = defaultdict(list)
    for r in records:
        for rung, value in rung_results(r).items():
            rungs[(bracket_of(r), rung)].append(_placed(value, direction))
            any_bracket[rung].append((_placed(value, direction), r.number, r.id))
        results = rung_results(r)
        if r.state == TrialState.PAUSED and results:
            top = max(results)
            paused[(bracket_of(r), top)].append((_placed(results[top], direction), r.number, r.id))
        if r.state in CURVE_STATES:
            for step in r.intermediate:
                upto = [
                    oriented(v, direction)
                    for s, v in r.intermediate.items()
                    if s <= step and math.isfinite(v)
                ]
                if upto:
                    averages[step].append(sum(upto) / len(upto))
    for key, values in rungs.items():
        assert list(index.rung_values(*key)) == sorted(values)
    for rung, rows in any_bracket.items():
        assert list(index.rung_rows(rung)) == sorted(rows)
    assert sorted(index.rungs_with_results()) == sorted(any_bracket)
    assert sorted(index.paused_leaders()) == sorted((k, min(v)) for k, v in paused.items())
    for step, values in averages.items():
        assert list(index.step_averages(step)) == pytest.approx(sorted(values))
    assert not index.step_averages(123.0)
    ranked = sorted(
        (key, r.number, r.id) for r in records if (key := rank_key(r, direction)) is not None
    )
    assert list(index.ranked()) == ranked
    completed = sorted(
        (_placed(r.value, direction), r.number, r.id)
        for r in records
        if r.state == TrialState.COMPLETED and r.value is not None
    )
    assert list(index.completed_rows()) == completed
    pending = [r.id for r in records if r.state in (TrialState.RUNNING, TrialState.QUEUED)]
    assert [r.id for r in index.pending()] == pending
    configs = {config_key(r.params) for r in records}
    for x in range(5):
        for c in "ab":
            assert index.has_config({"x": x, "c": c}) == (config_key({"x": x, "c": c}) in configs)
    with_theta = [r for r in records if "gp_theta" in r.extra]
    latest = index.latest_with("gp_theta")
    assert (latest.id if latest else None) == (with_theta[-1].id if with_theta else None)
    for tier in {key[:2] for key, _, _ in ranked}:
        numbers = sorted((n, i) for key, n, i in ranked if key[:2] == tier)
        assert list(index.tier_numbers(tier)) == numbers


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_index_matches_a_recomputation(seed: int, direction: Direction) -> None:
    rng = random.Random(seed)
    index = HistoryIndex(direction)
    records: list[TrialRecord] = []
    for step in range(150):
        if records and rng.random() < 0.5:
            trial_id = rng.randrange(len(records))
            records[trial_id] = _record(rng, trial_id)  # any change, even an odd one
            index.put(records[trial_id])
        else:
            records.append(_record(rng, len(records)))
            index.put(records[-1])
        if step % 15 == 0:
            _check(index, records, direction)
    _check(index, records, direction)


def test_a_curve_given_apart_from_the_record_counts() -> None:
    index = HistoryIndex("minimize")
    record = TrialRecord(id=0, number=0, params={}, state=TrialState.COMPLETED, value=1.0)
    index.put(record, {1.0: 4.0, 2.0: 2.0, 3.0: math.nan})
    assert list(index.step_averages(2.0)) == [3.0]
    assert list(index.step_averages(3.0)) == [3.0]
    assert index.records[0].intermediate == {}
    index.put(TrialRecord(id=0, number=0, params={}, state=TrialState.RUNNING))
    assert not index.step_averages(2.0)


def test_memory_history_keeps_its_index_in_step() -> None:
    rng = random.Random(7)
    history = MemoryHistory()
    for trial_id in range(40):
        history.records.append(_record(rng, trial_id))  # appended directly, as a test does
        if trial_id % 5 == 0:
            history.index("minimize")
    for _ in range(60):
        trial_id = rng.randrange(40)
        fresh = _record(rng, trial_id)
        history.update(
            trial_id, state=fresh.state, value=fresh.value, extra=fresh.extra, rung=fresh.rung
        )
    _check(history.index("minimize"), history.records, "minimize")


@pytest.mark.parametrize("seed", range(30))
def test_order_statistics_of_a_sorted_view(seed: int) -> None:
    rng = random.Random(seed)
    values = sorted(rng.choice([0.0, 1.0, 2.0, math.inf]) for _ in range(rng.randint(0, 8)))
    removed = rng.choice([*values, 5.0, None])
    add = rng.choice([0.0, 1.5, math.inf])
    expected = list(values)
    if removed in expected:
        expected.remove(removed)
    view = Without(values, removed)
    assert list(view) == expected
    merged = sorted([*expected, add])
    for k in range(1, len(merged) + 1):
        assert kth_smallest(view, k, add) == merged[k - 1]
    if merged:
        assert statistics.median(merged) == statistics.median(sorted(merged))
