"""TPE: the estimator against Optuna's, conditional spaces, and piBO priors (tpe and gp)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from app.engine.base import StudyContext, TrialRecord, TrialState
from app.engine.memory import MemoryHistory
from app.engine.samplers.gp import GPSampler
from app.engine.samplers.tpe import (
    Columns,
    TPESampler,
    _Parzen,
    default_weights,
    gamma,
    prior_exponent,
)
from app.engine.space import SearchSpace

MIXED = SearchSpace.from_dict(
    {
        "a": {"type": "float", "low": 0.0, "high": 1.0},
        "b": {"type": "float", "low": -2.0, "high": 3.0},
        "n": {"type": "int", "low": 0, "high": 9},
        "c": {"type": "categorical", "choices": ["x", "y", "z"]},
    }
)

CONDITIONAL = SearchSpace.from_dict(
    {
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.99,
            "condition": {"optimizer": ["sgd"]},
        },
        "beta1": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["adam"]}},
        "layers": {"type": "int", "low": 1, "high": 4},
        "width2": {"type": "int", "low": 8, "high": 64, "condition": {"layers": [2, 3, 4]}},
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
    }
)


def _random_configs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [space.from_unit(rng.random(len(space.searchable)).tolist()) for _ in range(n)]


def test_gamma_and_weights_are_optunas():
    sampler_module = pytest.importorskip("optuna.samplers._tpe.sampler")
    for n in (0, 1, 9, 10, 11, 24, 25, 26, 100, 251, 10_000):
        assert gamma(n) == sampler_module.default_gamma(n)
        assert default_weights(n).tolist() == pytest.approx(
            sampler_module.default_weights(n).tolist()
        )


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_the_estimator_is_optunas(n):
    """Same kernels (neighbour bandwidths, magic clip, prior component, bin masses,
    smoothed categoricals): the log densities differ only by the constant Jacobian of the
    unit transform."""
    optuna = pytest.importorskip("optuna")
    parzen = pytest.importorskip("optuna.samplers._tpe.parzen_estimator")
    from optuna.samplers._tpe.sampler import default_weights as optuna_weights

    observed = _random_configs(MIXED, n, seed=n)
    points = _random_configs(MIXED, 50, seed=100 + n)
    weights = optuna_weights(n)

    distributions = {
        "a": optuna.distributions.FloatDistribution(0.0, 1.0),
        "b": optuna.distributions.FloatDistribution(-2.0, 3.0),
        "n": optuna.distributions.IntDistribution(0, 9),
        "c": optuna.distributions.CategoricalDistribution(["x", "y", "z"]),
    }

    def internal(configs):
        return {
            name: np.array(
                [
                    distributions[name].to_internal_repr(c[name]) if name == "c" else float(c[name])
                    for c in configs
                ],
                dtype=float,
            )
            for name in distributions
        }

    theirs = parzen._ParzenEstimator(
        internal(observed),
        distributions,
        parzen._ParzenEstimatorParameters(
            prior_weight=1.0,
            consider_magic_clip=True,
            consider_endpoints=False,
            weights=optuna_weights,
            multivariate=True,
        ),
        predetermined_weights=np.asarray(weights, dtype=float).copy(),
    ).log_pdf(internal(points))

    columns = Columns(MIXED)
    ours_model = _Parzen(*columns.encode(observed), weights, columns)
    ours = ours_model.log_pdf(*columns.encode(points))
    difference = ours - theirs
    # Densities over unit coordinates: the float dimensions' widths (1 and 5) drop out.
    assert difference == pytest.approx(np.full(len(points), math.log(5.0)), abs=1e-6)


def _run(sampler_class, space: SearchSpace, trials: int, objective, seed=1, **options):
    context = StudyContext(
        space=space,
        direction="minimize",
        metric="y",
        seed=seed,
        options={"n_startup_trials": 5, **options},
    )
    history = MemoryHistory()
    for number in range(trials):
        params = sampler_class(context).suggest(history).params
        history.records.append(
            TrialRecord(
                id=number,
                number=number,
                params=params,
                state=TrialState.COMPLETED,
                value=objective(params),
            )
        )
    return history.records


def _conditional_objective(params: dict[str, Any]) -> float:
    value = math.log10(params["lr"]) + 3  # best at 1e-3
    value = value**2
    if params["optimizer"] == "sgd":
        value += (params["momentum"] - 0.9) ** 2 * 10
    else:
        value += 0.5 + (params["beta1"] - 0.9) ** 2
    if "width2" in params:
        value += abs(params["width2"] - 32) / 32
    return value


CONDITIONAL_PRIORS = SearchSpace.from_dict(
    {
        name: {**spec, "prior": prior} if prior else spec
        for name, spec, prior in (
            (name, spec, {"momentum": {"value": 0.9}, "optimizer": {"value": "adam"}}.get(name))
            for name, spec in CONDITIONAL.to_dict().items()
        )
    }
)


@pytest.mark.parametrize("space", [CONDITIONAL, CONDITIONAL_PRIORS], ids=["plain", "priors"])
@pytest.mark.parametrize("sampler_class", [TPESampler, GPSampler])
def test_conditional_spaces_get_only_active_parameters(sampler_class, space):
    records = _run(sampler_class, space, 25, _conditional_objective)
    for record in records:
        params = dict(record.params)
        assert space.validate(params) == params
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert ("beta1" in params) == (params["optimizer"] == "adam")
        assert ("width2" in params) == (params["layers"] >= 2)
    # The model learns from configs that lack some parameters: it goes for sgd, the
    # better branch, more often after the start-up than before.
    later = [r.params["optimizer"] for r in records[10:]]
    assert later.count("sgd") > len(later) / 2


def test_an_inactive_parameter_leaves_its_kernels_flat():
    """A result without `momentum` says nothing about it: l(x) over momentum is the same
    whatever that result's other values."""
    columns = Columns(CONDITIONAL)
    with_adam = [
        {"optimizer": "adam", "beta1": 0.9, "layers": 1, "lr": 1e-3},
        {"optimizer": "sgd", "momentum": 0.9, "layers": 1, "lr": 1e-3},
    ]
    model = _Parzen(*columns.encode(with_adam), np.ones(2), columns)
    assert model.active[0, columns.numeric.index(CONDITIONAL["momentum"])] == np.False_
    candidates = [{"optimizer": "sgd", "momentum": m, "layers": 1, "lr": 1e-3} for m in (0.6, 0.9)]
    density = model.log_pdf(*columns.encode(candidates))
    # Only the sgd result's kernel tells momentum 0.9 from 0.6.
    assert density[1] > density[0]


@pytest.mark.parametrize("sampler_class", [TPESampler, GPSampler])
def test_a_prior_runs_its_mode_first_and_pulls_the_search(sampler_class):
    raw = {
        "x": {"type": "float", "low": 0.0, "high": 1.0, "prior": {"value": 0.8}},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
        "k": {"type": "categorical", "choices": ["a", "b", "c"], "prior": {"value": "c"}},
    }
    space = SearchSpace.from_dict(raw)
    plain = SearchSpace.from_dict(
        {n: {k: v for k, v in s.items() if k != "prior"} for n, s in raw.items()}
    )

    def flat(params):  # no information: only the prior moves the search
        return 1.0

    with_prior = _run(sampler_class, space, 20, flat)
    without = _run(sampler_class, plain, 20, flat)
    assert with_prior[0].params["x"] == pytest.approx(0.8)
    assert with_prior[0].params["k"] == "c"
    near = sum(abs(r.params["x"] - 0.8) < 0.2 for r in with_prior)
    near_without = sum(abs(r.params["x"] - 0.8) < 0.2 for r in without)
    assert near > near_without
    no_mode = _run(sampler_class, space, 1, flat, prior_mode_first=False)
    assert no_mode[0].params["x"] != pytest.approx(0.8)


def test_the_priors_weight_decays_with_the_results():
    assert prior_exponent(10, 5.0) == pytest.approx(0.5)
    assert prior_exponent(100, 5.0) == pytest.approx(0.05)
    assert prior_exponent(0, 5.0) == pytest.approx(5.0)


def test_a_wrong_prior_is_overruled_by_the_data():
    """A confident prior at x = 0.05 while the optimum is at 0.9: the later configs move
    to the optimum anyway."""
    space = SearchSpace.from_dict(
        {
            "x": {
                "type": "float",
                "low": 0.0,
                "high": 1.0,
                "prior": {"value": 0.05, "confidence": "high"},
            },
            "y": {"type": "float", "low": 0.0, "high": 1.0},
        }
    )
    records = _run(
        TPESampler, space, 60, lambda p: (p["x"] - 0.9) ** 2 + (p["y"] - 0.5) ** 2, seed=4
    )
    best = min(records, key=lambda r: r.value)
    assert best.params["x"] == pytest.approx(0.9, abs=0.1)
    assert np.median([r.params["x"] for r in records[-15:]]) > 0.6
