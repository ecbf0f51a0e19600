"""One contract, every sampler under every scheduler (docs/strategies.md)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from app.engine import registry
from app.engine.base import Action, TrialState
from app.engine.lifecycle import aggregate_value
from app.engine.memory import MemoryStudy
from app.engine.schedulers.forecast import ForecastRule, ForecastStop
from app.engine.schedulers.hyperband import rung_values
from app.engine.space import SearchSpace
from tests.engine.sim import FIDELITY, SAMPLER_NAMES, SCHEDULERS, SPACE, build, simulate

COMBOS = [
    pytest.param(
        sampler,
        *scheduler,
        id=f"{sampler}-{scheduler[0]}-{scheduler[1].get('mode', '')}"
        + (
            f"-{scheduler[2]['rule']}"
            if scheduler[2] and scheduler[0] != scheduler[2]["rule"]
            else ""
        ),
    )
    for sampler, scheduler in itertools.product(SAMPLER_NAMES, SCHEDULERS)
    # BOHB brings its own model; the samplers only fill its random share.
    if not (scheduler[0] == "bohb" and sampler in ("grid", "sobol", "gp"))
]


@pytest.mark.parametrize(("sampler", "scheduler", "options", "early"), COMBOS)
def test_contract(sampler, scheduler, options, early):
    run = simulate(build(sampler, scheduler, options, early), max_trials=24)
    study = run.study
    records = study.history.trials()

    # Configs inside the space, and no grid point handed out twice.
    for record in records:
        assert SPACE.validate(dict(record.params)) == dict(record.params)
    if sampler == "grid":
        configs = [tuple(sorted(r.params.items())) for r in records]
        assert len(configs) == len(set(configs))

    # The budget granted is counted once: what the trials hold, never beyond the fidelity's max.
    assert study.budget_used == pytest.approx(sum(r.budget or 0.0 for r in records))
    for record in records:
        assert record.budget is None or record.budget <= FIDELITY.max
    # A trial a scheduler ended holds the value of its curve.
    for record in records:
        if record.state in (TrialState.STOPPED, TrialState.PAUSED):
            assert record.value == aggregate_value(record.intermediate, "last", "minimize")

    # Nothing left hanging: every trial ended, or is paused and cannot be promoted.
    for record in records:
        assert record.state in (TrialState.COMPLETED, TrialState.STOPPED, TrialState.PAUSED)
    assert study.strategy.pending_resume(study.history) is None

    # The same seed gives the same configs and decisions.
    again = simulate(build(sampler, scheduler, options, early), max_trials=24)
    assert again.log == run.log

    if scheduler in registry.MULTI_FIDELITY:
        _check_rungs(study, options.get("mode", "stop"))


def _check_rungs(study: MemoryStudy, mode: str) -> None:
    """Decisions agree with the rung results kept on the trials."""
    levels = FIDELITY.rungs()
    records = study.history.trials()
    for record in records:
        values = rung_values(record)
        bracket = int(record.extra.get("bracket", 0))
        if values:
            assert record.rung == max(values)
            assert min(values) >= bracket
        for rung, value in values.items():
            assert value == pytest.approx(record.intermediate[levels[rung]])
        if mode == "pause":
            assert record.budget in levels
        if record.state == TrialState.STOPPED and "forecast" in record.extra:
            _check_forecast_stop(record)
        elif record.state == TrialState.STOPPED:
            # A stopped trial was outside the top 1/eta of its bracket at its last rung.
            rung = max(values)
            peers = sorted(
                rung_values(r)[rung]
                for r in records
                if int(r.extra.get("bracket", 0)) == bracket and rung in rung_values(r)
            )
            assert values[rung] > peers[0]
    if mode == "pause":
        assert any(r.state == TrialState.COMPLETED for r in records)


def _check_forecast_stop(record) -> None:
    """A trial the forecast rule stopped holds the forecast that stopped it."""
    shown = record.extra["forecast"]
    assert shown["probability"] < 0.05
    assert shown["from_step"] == max(record.intermediate)
    assert len(shown["steps"]) == len(shown["mean"]) == len(shown["low"]) == len(shown["high"])
    assert shown["steps"][-1] == FIDELITY.max
    assert all(lo <= m <= hi for lo, m, hi in zip(shown["low"], shown["mean"], shown["high"]))


PRIOR_SPACE = SearchSpace.from_dict(
    {
        **SPACE.to_dict(),
        "lr": {
            "type": "float",
            "low": 1e-4,
            "high": 1.0,
            "scale": "log",
            "prior": {"value": 1e-2, "confidence": "high"},
        },
        "act": {
            "type": "categorical",
            "choices": ["relu", "tanh", "gelu"],
            "prior": {"value": "relu"},
        },
    }
)
PRIOR_COMBOS = [
    pytest.param(sampler, name, mode, id=f"{sampler}-{name}-{mode}-prior")
    for name in ("asha", "hyperband", "bohb")
    for mode in ("stop", "pause")
    for sampler in ("random", "tpe")
]


@pytest.mark.parametrize(("sampler", "scheduler", "mode"), PRIOR_COMBOS)
def test_prior_band_contract(sampler, scheduler, mode):
    """With priors in the space, asha, hyperband and bohb draw new configs as PriorBand
    does, and keep every promise of the contract."""
    options = {"mode": mode}
    run = simulate(build(sampler, scheduler, options, None, space=PRIOR_SPACE), max_trials=24)
    study = run.study
    records = study.history.trials()
    for record in records:
        assert PRIOR_SPACE.validate(dict(record.params)) == dict(record.params)
        assert record.state in (TrialState.COMPLETED, TrialState.STOPPED, TrialState.PAUSED)
    assert study.strategy.pending_resume(study.history) is None
    sources = {r.extra.get("prior_band") for r in records}
    assert sources & {"prior", "incumbent"}
    again = simulate(build(sampler, scheduler, options, None, space=PRIOR_SPACE), max_trials=24)
    assert again.log == run.log
    _check_rungs(study, mode)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_pibo_contract(sampler):
    """With priors in the space, tpe and gp (piBO) run the priors' values first, keep
    every config inside the space, and give the same run under the same seed, also when
    the sampler is rebuilt before every ask."""
    run = simulate(build(sampler, "none", {}, None, space=PRIOR_SPACE), max_trials=24)
    records = run.study.history.trials()
    for record in records:
        assert PRIOR_SPACE.validate(dict(record.params)) == dict(record.params)
        assert record.state == TrialState.COMPLETED
    first = min(records, key=lambda r: r.number)
    assert first.params["lr"] == pytest.approx(1e-2)
    assert first.params["act"] == "relu"
    again = simulate(build(sampler, "none", {}, None, space=PRIOR_SPACE), max_trials=24)
    assert again.log == run.log

    rebuilt = _rebuilt_at_every_call(build(sampler, "none", {}, None, space=PRIOR_SPACE))
    assert simulate(rebuilt, max_trials=24).log == run.log


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp"])
def test_parallel_asks_see_pending_trials(sampler):
    study = build(sampler, "none", {}, None)
    for _ in range(8):
        record, _ = study.ask()
        study.tell(record.id, math.sin(record.id))
    pending = [study.ask()[0] for _ in range(4)]
    configs = [tuple(sorted(r.params.items())) for r in pending]
    assert len(set(configs)) == 4


@pytest.mark.parametrize(("sampler", "scheduler", "options", "early"), COMBOS[::5])
def test_fresh_strategy_objects_decide_the_same(sampler, scheduler, options, early):
    """Strategies keep no memory: rebuilding them before every call changes nothing."""
    kept = simulate(build(sampler, scheduler, options, early), max_trials=15)

    rebuilt = _rebuilt_at_every_call(build(sampler, scheduler, options, early))
    assert simulate(rebuilt, max_trials=15).log == kept.log


def _rebuilt_at_every_call(study: Any) -> Any:
    """The study with its strategy rebuilt from its options before every call."""
    original = study.strategy

    class Rebuilding:
        def suggest(self, history):
            return _fresh(original).suggest(history)

        def on_result(self, history, trial):
            return _fresh(original).on_result(history, trial)

        def pending_resume(self, history):
            return _fresh(original).pending_resume(history)

    study.strategy = Rebuilding()
    return study


def _fresh(strategy: registry.Strategy) -> registry.Strategy:
    scheduler = strategy.scheduler
    if isinstance(scheduler, ForecastStop):
        fresh = ForecastStop(
            type(scheduler.primary)(scheduler.primary.context), ForecastRule(scheduler.rule.context)
        )
    else:
        fresh = type(scheduler)(scheduler.context)
    return registry.Strategy(type(strategy.sampler)(strategy.sampler.context), fresh)


def test_every_registered_strategy_is_covered():
    assert set(SAMPLER_NAMES) == set(registry.SAMPLERS)
    assert {s for s, _, _ in SCHEDULERS if s in registry.MULTI_FIDELITY} == set(
        registry.MULTI_FIDELITY
    )
    assert {e["rule"] for _, _, e in SCHEDULERS if e} == set(registry.STOPPING_RULES)


def test_decisions_are_explained():
    run = simulate(build("random", "asha", {"mode": "stop"}, None), max_trials=20)
    actions = {entry[3] for entry in run.log if entry[0] == "report"}
    assert Action.STOP.value in actions


@pytest.mark.parametrize(("aggregate", "expected"), [("last", 0.9), ("best", 0.1)])
def test_a_stopped_trials_value_follows_the_objectives_aggregate(aggregate, expected):
    study = build("random", "asha", {"mode": "stop"}, None, aggregate=aggregate)
    kept, _ = study.ask()
    study.report(kept.id, {1.0: 0.5})
    stopped, _ = study.ask()
    # Its best point comes before the rung; the rung's value is what ASHA ranks.
    decision = study.report(stopped.id, {0.5: 0.1, 1.0: 0.9})
    assert decision.action == Action.STOP
    record = study.history.get(stopped.id)
    assert record.state == TrialState.STOPPED and record.value == expected


def test_a_resumed_budget_is_clamped_and_counted_once():
    study = build("random", "asha", {"mode": "pause"}, None)
    record, _ = study.ask()
    assert record.budget == FIDELITY.min and study.budget_used == FIDELITY.min
    assert study.report(record.id, {1.0: 0.5}).action == Action.PAUSE
    resumed, is_resume = study.ask(can_create=False)
    assert is_resume and resumed.id == record.id and resumed.budget == 3.0
    assert study.budget_used == 3.0  # 1 granted first, then the 2 added


def test_failed_trials_are_retried_then_fail():
    study = build("random", "none", {}, None)
    study.max_retries = 1
    record, _ = study.ask()
    assert study.fail(record.id, "OOM").state == TrialState.QUEUED
    assert study.budget_used == 0.0  # given back, granted again on restart
    again, resumed = study.ask()
    assert again.id == record.id and again.state == TrialState.RUNNING and not resumed
    assert study.fail(record.id, "OOM").state == TrialState.FAILED
