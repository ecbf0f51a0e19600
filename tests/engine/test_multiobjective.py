"""Samplers on studies with several objectives and constraints (app/engine/pareto.py,
app/engine/samplers/nsga2.py, mo.py and observations.multi_objective)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine import pareto, registry
from app.engine.base import StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.pareto import ConstraintSpec, ObjectiveSpec
from app.engine.samplers import observations
from app.engine.samplers.tpe import gamma
from app.engine.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "x0": {"type": "float", "low": 0.0, "high": 1.0},
        "x1": {"type": "float", "low": 0.0, "high": 1.0},
        "x2": {"type": "float", "low": 0.0, "high": 1.0},
        "kind": {"type": "categorical", "choices": ["a", "b"]},
        "n": {"type": "int", "low": 1, "high": 8},
    }
)
OBJECTIVES = (ObjectiveSpec("f0", "minimize"), ObjectiveSpec("f1", "minimize"))
CONSTRAINT = (ConstraintSpec("c", "<=", 0.0),)
MO_SAMPLERS = ["random", "sobol", "grid", "tpe", "nsga2", "motpe"]


def context(seed: int = 0, constraints=CONSTRAINT, options=None) -> StudyContext:
    return StudyContext(
        space=SPACE,
        direction="minimize",
        metric="f0",
        seed=seed,
        options=options or {},
        objectives=OBJECTIVES,
        constraints=constraints,
    )


def zdt1(params) -> tuple[list[float], float]:
    x = np.array([params["x0"], params["x1"], params["x2"]])
    g = 1 + 9 * x[1:].sum() / 2
    f = [float(x[0]), float(g * (1 - math.sqrt(x[0] / g)))]
    return f, float(params["x1"] - 0.6)  # feasible when x1 <= 0.6


def run(sampler: str, trials: int = 40, seed: int = 0, parallel: int = 1, constraints=CONSTRAINT):
    ctx = context(seed, constraints)
    study = MemoryStudy(registry.build({"name": sampler}, None, ctx), ctx)
    log = []
    while study.history.count() < trials:
        batch = []
        for _ in range(parallel):
            asked = study.ask()
            assert asked is not None
            batch.append(asked[0])
        for record in batch:
            values, c = zdt1(record.params)
            study.tell(record.id, values, constraints=[c])
            log.append(dict(record.params))
    return study, log


@pytest.mark.parametrize("sampler", MO_SAMPLERS)
def test_every_sampler_runs_a_constrained_two_objective_study(sampler):
    study, log = run(sampler, parallel=3)
    for params in log:
        assert SPACE.validate(params) == params
    records = study.history.trials()
    assert all(r.state == TrialState.COMPLETED and r.values is not None for r in records)
    again = run(sampler, parallel=3)[1]
    assert again == log  # the same seed gives the same configs


@pytest.mark.parametrize("sampler", ["nsga2", "motpe", "tpe"])
def test_parallel_asks_get_distinct_configs(sampler):
    ctx = context()
    study = MemoryStudy(registry.build({"name": sampler}, None, ctx), ctx)
    for _ in range(30):
        record, _ = study.ask()  # type: ignore[misc]
        values, c = zdt1(record.params)
        study.tell(record.id, values, constraints=[c])
    pending = [study.ask()[0].params for _ in range(6)]  # type: ignore[index]
    keys = {tuple(sorted(p.items())) for p in pending}
    assert len(keys) == len(pending)


def test_tpe_on_several_objectives_is_the_multi_objective_tpe():
    from app.engine.samplers.mo import MOTPESampler

    assert isinstance(registry.build({"name": "tpe"}, None, context()).sampler, MOTPESampler)


def _hypervolume(study) -> float:
    points = [
        r.values
        for r in study.history.trials()
        if r.values is not None and (r.constraint_values is None or r.constraint_values[0] <= 0)
    ]
    return pareto.hypervolume(np.asarray(points), [1.1, 11.0])


@pytest.mark.parametrize("sampler", ["nsga2", "motpe"])
def test_model_samplers_beat_random_on_zdt1(sampler):
    ours = [_hypervolume(run(sampler, trials=80, seed=s, constraints=())[0]) for s in range(3)]
    rand = [_hypervolume(run("random", trials=80, seed=s, constraints=())[0]) for s in range(3)]
    assert np.median(ours) > np.median(rand)


def test_constrained_tpe_suggests_more_feasible_configs_than_random():
    def share(sampler: str) -> float:
        study, _ = run(sampler, trials=60, seed=1)
        later = study.history.trials()[20:]
        return sum(r.constraint_values[0] <= 0 for r in later) / len(later)  # type: ignore[index]

    assert share("tpe") > share("random")


def test_the_good_group_is_feasible_and_non_dominated_first():
    study, _ = run("random", trials=40)
    observed = observations.multi_objective(study.history, context(), gamma)
    records = {r.number: r for r in study.history.trials()}
    good = [records[n] for n in observed.numbers[: observed.n_good]]
    assert observed.n_good == gamma(40)
    feasible = [r for r in records.values() if r.constraint_values[0] <= 0]  # type: ignore[index]
    assert all(r.constraint_values[0] <= 0 for r in good)  # type: ignore[index]
    front = pareto.front_of({r.number: r.values for r in feasible}, ["minimize", "minimize"])  # type: ignore[misc]
    head = observed.numbers[: min(len(front), observed.n_good)]
    assert set(head) <= set(front)
    # Infeasible results come last, least violated first.
    tail = [records[n] for n in observed.numbers if records[n].constraint_values[0] > 0]  # type: ignore[index]
    violations = [r.constraint_values[0] for r in tail]  # type: ignore[index]
    assert violations == sorted(violations)
    assert observed.numbers[-len(tail) :] == [r.number for r in tail]


def test_asha_ranks_a_rung_by_non_dominated_sorting():
    from app.engine.base import Action, Fidelity

    ctx = StudyContext(
        space=SPACE,
        direction="minimize",
        metric="f0",
        seed=0,
        options={},
        fidelity=Fidelity("epochs", 1, 9, 3),
        objectives=OBJECTIVES,
    )
    study = MemoryStudy(registry.build({"name": "asha"}, None, ctx), ctx)
    # At rung 0 (1 epoch): three trials on the front, then one each of them dominates.
    decisions = []
    for f0, f1 in [(0.1, 0.9), (0.9, 0.1), (0.5, 0.5), (0.95, 0.95)]:
        record, _ = study.ask()  # type: ignore[misc]
        decisions.append(study.report(record.id, {1.0: f0}, others={"f1": {1.0: f1}}))
    # Three results: the top 1 goes on; the first is alone on the front.
    assert decisions[0].action == Action.CONTINUE
    assert decisions[3].action == Action.STOP
    assert "non-dominated rank" in decisions[3].reason
    stopped = study.history.get(3)
    assert stopped.extra["rung_objectives"]["0"] == [0.95, 0.95]
    # On the front but behind: a tie on crowding (both extremes) keeps the earlier ahead;
    # the middle point of three is the most crowded.
    assert decisions[1].action == Action.STOP and "place 2 of 2" in decisions[1].reason
    assert decisions[2].action == Action.STOP and "place 3 of 3" in decisions[2].reason
    assert "front 0" in decisions[2].reason and "front 1" in decisions[3].reason
