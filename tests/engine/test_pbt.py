"""Population-based training (pbt, pb2): exploit, explore, schedules, replay, options."""

from __future__ import annotations

import math
import random

import pytest

from app.engine import registry
from app.engine.base import Action, Fidelity, SearchExhausted, StudyContext, TrialState
from app.engine.errors import ConfigError
from app.engine.memory import MemoryStudy
from app.engine.schedulers.pb2 import select
from app.engine.schedulers.pbt import (
    COPY,
    KEY,
    REPLAY,
    check_options,
    perturb,
    replay_start,
    schedule_at,
)
from app.engine.space import FloatParam, SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
        "width": {"type": "int", "low": 8, "high": 128, "step": 8},
        "act": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    }
)
FIDELITY = Fidelity(param="epoch", min=1, max=8)


def build(name: str = "pbt", seed: int = 5, **options) -> MemoryStudy:
    strategy = {"name": name, "population_size": 4, "perturbation_interval": 2, **options}
    context = StudyContext(
        space=SPACE,
        direction="minimize",
        metric="loss",
        seed=seed,
        options={k: v for k, v in strategy.items() if k != "name"},
        fidelity=FIDELITY,
        max_trials=100,
    )
    return MemoryStudy(registry.build(strategy, None, context), context)


def start_population(study: MemoryStudy) -> list[int]:
    ids = []
    for _ in range(4):
        record, resumed = study.ask()
        assert not resumed and record.budget == 2.0
        assert record.extra[KEY]["schedule"] == [{"step": 0.0, "params": dict(record.params)}]
        ids.append(record.id)
    return ids


def test_the_population_is_complete_after_population_size_members():
    study = build()
    start_population(study)
    with pytest.raises(SearchExhausted):
        study.ask()


def test_the_bottom_quantile_exploits_the_top_and_explores():
    study = build(resample_probability=0.0)
    ids = start_population(study)
    losses = {ids[0]: 0.5, ids[1]: 0.1, ids[2]: 0.3, ids[3]: 0.9}
    decisions = {}
    for trial_id in ids:
        decisions[trial_id] = study.report(trial_id, {1.0: 1.0, 2.0: losses[trial_id]})
    assert all(d.action == Action.PAUSE for d in decisions.values())
    # Each is ranked among the members at the same boundary when it arrives
    # (asynchronous); the first waits for a quorum (2 of 4) to compare with. The worst
    # of four is in the bottom 25 % (ceil(4 * 0.25) = 1 member).
    assert "waits until 2 members have reached epoch 2" in decisions[ids[0]].reason
    assert "not in the bottom 25 %" in decisions[ids[1]].reason
    assert "(rank 2 of 3) is not in the bottom" in decisions[ids[2]].reason
    worst = decisions[ids[3]].reason
    assert "in the bottom 25 % (rank 4 of 4)" in worst and "exploits trial 1" in worst

    # The waiting member is decided when it resumes, among all four.
    first = study.strategy.pending_resume(study.history)
    assert first is not None and first.resume_trial_id == ids[0]
    assert "(rank 3 of 4) is not in the bottom 25 %" in first.reason
    resumed = {}
    for _ in range(4):
        record, is_resume = study.ask()
        assert is_resume
        resumed[record.id] = record
    donor = study.history.get(ids[1])
    receiver = resumed[ids[3]]
    assert receiver.extra[COPY] == {"trial_id": ids[1], "trial_number": 1, "step": 2.0}
    assert receiver.budget == 4.0
    # Explore: x0.8 or x1.2 of the donor's numbers, a neighbouring choice for a category.
    lr_ratio = receiver.params["lr"] / donor.params["lr"]
    assert min(abs(lr_ratio - 0.8), abs(lr_ratio - 1.2)) < 1e-9
    assert receiver.params["width"] in {
        SPACE["width"].quantize(min(max(donor.params["width"] * f, 8), 128)) for f in (0.8, 1.2)
    }
    choices = ["relu", "tanh", "gelu"]
    assert abs(choices.index(receiver.params["act"]) - choices.index(donor.params["act"])) <= 1
    # The schedule holds the donor's values up to the copied step, then the new ones.
    info = receiver.extra[KEY]
    assert info["schedule"] == [
        {"step": 0.0, "params": dict(donor.params)},
        {"step": 2.0, "params": dict(receiver.params)},
    ]
    [exploit] = info["lineage"]
    assert exploit["donor_id"] == ids[1] and exploit["value"] == 0.9
    assert exploit["donor_value"] == 0.1
    # The others go on with their own params, and copy nothing.
    for trial_id in ids[:3]:
        assert resumed[trial_id].extra.get(COPY) is None
        assert resumed[trial_id].params == study.history.get(trial_id).params
        assert len(resumed[trial_id].extra[KEY]["schedule"]) == 1


def test_exploit_and_explore_are_events_of_the_resume():
    study = build(resample_probability=0.0)
    ids = start_population(study)
    for trial_id, loss in zip(ids, (0.1, 0.2, 0.6, 0.9), strict=True):
        study.report(trial_id, {2.0: loss})
    suggestion = None
    for _ in range(4):
        suggestion = study.strategy.pending_resume(study.history)
        assert suggestion is not None
        if suggestion.resume_trial_id == ids[3]:
            break
        study.ask()
    assert suggestion is not None and suggestion.resume_trial_id == ids[3]
    kinds = [kind for kind, _, _ in suggestion.events]
    assert kinds == ["exploit", "explore"]
    exploit_reason = suggestion.events[0][1]
    assert "loss 0.9 in the bottom 25 %" in exploit_reason
    assert "copied trial 0's checkpoint (epoch 2, loss 0.1)" in exploit_reason
    assert "lr " in suggestion.events[1][1] and "->" in suggestion.events[1][1]


def test_the_same_seed_gives_the_same_population():
    def run(seed: int) -> list[tuple]:
        study = build(seed=seed, resample_probability=0.5)
        log = []
        ids = start_population(study)
        for boundary in (2.0, 4.0, 6.0):
            for i, trial_id in enumerate(ids):
                record = study.history.get(trial_id)
                loss = (i + 1) * record.params["lr"] + boundary
                study.report(trial_id, {boundary: loss})
            for _ in ids:
                record, _ = study.ask()
                log.append((record.id, record.budget, tuple(sorted(record.params.items()))))
        return log

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_explore_keeps_values_in_the_space():
    rng = random.Random(0)
    base = {"lr": 1.0, "width": 128, "act": "gelu"}
    for _ in range(200):
        new, why = perturb(SPACE, base, rng, 0.3, (0.8, 1.2))
        assert SPACE.validate(new) == new
        assert why
        base = new


def test_schedule_at_reads_the_values_in_force():
    schedule = [{"step": 0.0, "params": {"lr": 0.1}}, {"step": 4.0, "params": {"lr": 0.01}}]
    assert schedule_at(schedule, 0) == {"lr": 0.1}
    assert schedule_at(schedule, 3.9) == {"lr": 0.1}
    assert schedule_at(schedule, 4.0) == {"lr": 0.01}


def test_a_replay_pauses_where_the_schedule_changes_and_resumes_with_the_next_values():
    study = build()
    start_population(study)
    schedule = [
        {"step": 0.0, "params": {"lr": 0.1, "width": 16, "act": "relu"}},
        {"step": 4.0, "params": {"lr": 0.01, "width": 16, "act": "relu"}},
    ]
    params, budget, extra = replay_start(schedule, FIDELITY.max, {"trial_id": 0})
    assert params == schedule[0]["params"] and budget == 4.0
    assert extra[REPLAY]["trial_id"] == 0
    # Inserted as a queued trial, as POST /studies/{id}/replay does.
    from app.engine import lifecycle
    from app.engine.base import TrialRecord

    change = lifecycle.create(params, source="replay", budget=budget, queued=True, extra=extra)
    number = study.history.count()
    record = study.history.add(
        TrialRecord(number, number, params, TrialState.QUEUED, budget=budget, extra=dict(extra))
    )
    assert change.state == TrialState.QUEUED
    study.queued.append(record.id)
    started, _ = study.ask()
    assert started.id == record.id
    assert study.report(record.id, {2.0: 0.5}).action == Action.CONTINUE
    decision = study.report(record.id, {4.0: 0.4})
    assert decision.action == Action.PAUSE and "replay" in decision.reason
    resumed = study.strategy.pending_resume(study.history)
    assert resumed is not None and resumed.resume_trial_id == record.id
    assert resumed.params == schedule[1]["params"] and resumed.budget == FIDELITY.max


def test_options_are_checked_with_their_names():
    with pytest.raises(ConfigError) as raised:
        registry.validate({"name": "pbt", "populaton_size": 4}, None, has_fidelity=True)
    assert raised.value.field == "strategy.populaton_size"
    with pytest.raises(ConfigError) as raised:
        registry.validate({"name": "pbt", "quantile_fraction": 0.7}, None, has_fidelity=True)
    assert raised.value.field == "strategy.quantile_fraction"
    with pytest.raises(ConfigError) as raised:
        registry.validate({"name": "pb2", "resample_probability": 0.2}, None, has_fidelity=True)
    assert raised.value.field == "strategy.resample_probability"
    with pytest.raises(ConfigError) as raised:
        registry.validate({"name": "pb2"}, None, has_fidelity=False)
    assert raised.value.field == "fidelity"
    with pytest.raises(ConfigError) as raised:
        check_options({"perturbation_interval": 8}, FIDELITY)
    assert raised.value.field == "strategy.perturbation_interval"


def test_pb2_prefers_params_that_improved_fastest():
    lr = FloatParam("lr", 1e-4, 1.0, "log")
    rng = random.Random(3)
    rows = []
    for t in range(2, 20, 2):
        for _ in range(4):
            value = lr.from_unit(rng.random())
            gain = math.exp(-(((lr.to_unit(value) - 0.3) / 0.1) ** 2))
            rows.append({"t": t, "r_before": -1.0, "y": gain, "params": {"lr": value}})
    chosen = select([lr], rows, [], time=20.0, reward_before=-1.0, seed=1)
    assert chosen is not None
    assert abs(lr.to_unit(chosen["lr"]) - 0.3) < 0.15
    assert select([lr], rows[:2], [], time=20.0, reward_before=-1.0, seed=1) is None


def test_pb2_runs_a_population_to_the_end():
    study = build("pb2")
    ids = start_population(study)
    for boundary in (2.0, 4.0, 6.0):
        for i, trial_id in enumerate(ids):
            record = study.history.get(trial_id)
            study.report(trial_id, {boundary: (i + 1) * record.params["lr"] / boundary})
        for _ in ids:
            study.ask()
    for trial_id in ids:
        assert study.report(trial_id, {8.0: 0.01}).action == Action.CONTINUE
        study.tell(trial_id, 0.01)
    records = study.history.trials()
    assert all(r.state == TrialState.COMPLETED for r in records)
    assert any(r.extra[KEY]["lineage"] for r in records)
    for record in records:
        assert SPACE.validate(dict(record.params)) == dict(record.params)


def test_max_trials_below_the_population_size_makes_it_smaller():
    strategy = {"name": "pbt", "population_size": 4, "perturbation_interval": 2}
    context = StudyContext(
        space=SPACE,
        direction="minimize",
        metric="loss",
        seed=1,
        options={"population_size": 4, "perturbation_interval": 2},
        fidelity=FIDELITY,
        max_trials=2,
    )
    study = MemoryStudy(registry.build(strategy, None, context), context)
    first, _ = study.ask()
    second, _ = study.ask()
    with pytest.raises(SearchExhausted):
        study.ask()
    # Both reach the boundary: the second is compared with the first, nobody waits.
    study.report(first.id, {2.0: 0.1})
    study.report(second.id, {2.0: 0.2})
    assert study.strategy.pending_resume(study.history) is not None
    for _ in range(2):
        assert study.ask()[1]


def test_the_budget_preview_counts_the_population_to_the_full_budget():
    from app.engine.plan import make_plan

    settings = registry.parse(
        {"name": "pbt", "population_size": 4, "perturbation_interval": 2}, None, True
    )
    plan = make_plan(settings, FIDELITY, max_trials=10, max_budget=None)
    assert plan.scheduler == "pbt"
    assert plan.expected_budget == plan.worst_case_budget == 4 * FIDELITY.max
