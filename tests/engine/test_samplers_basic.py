"""Random, grid and Sobol samplers: determinism under a seed, coverage, grid sizes."""

from __future__ import annotations

import pytest

from app.engine.base import SearchExhausted, StudyContext, TrialRecord, TrialState
from app.engine.samplers.grid import GridSampler
from app.engine.samplers.random import RandomSampler
from app.engine.samplers.sobol import SobolSampler
from app.engine.space import parse_space
from tests.engine.test_space_properties import ListHistory
from tests.fixtures.studies import SEED_SPACE


def _context(raw, seed=7, **options) -> StudyContext:
    return StudyContext(
        space=parse_space(raw), direction="minimize", metric="loss", seed=seed, options=options
    )


def _run(sampler, n: int) -> list[dict]:
    history = ListHistory()
    configs = []
    for _ in range(n):
        suggestion = sampler.suggest(history)
        configs.append(dict(suggestion.params))
        history.add(suggestion)
    return configs


@pytest.mark.parametrize("sampler_class", [RandomSampler, SobolSampler])
def test_same_seed_same_configs_other_seed_other_configs(sampler_class):
    first = _run(sampler_class(_context(SEED_SPACE, seed=1)), 10)
    again = _run(sampler_class(_context(SEED_SPACE, seed=1)), 10)
    other = _run(sampler_class(_context(SEED_SPACE, seed=2)), 10)
    assert first == again
    assert first != other
    assert len({c["lr"] for c in first}) == 10
    assert all(c["epochs"] == 27 for c in first)


def test_random_config_depends_only_on_seed_and_number():
    sampler = RandomSampler(_context(SEED_SPACE, seed=5))
    configs = _run(sampler, 5)
    # A history with other trials but the same count gives trial 3 the same config.
    history = ListHistory()
    for number in range(3):
        history.records.append(
            TrialRecord(id=number, number=number, params={}, state=TrialState.FAILED)
        )
    assert dict(sampler.suggest(history).params) == configs[3]


def test_random_covers_log_scale_evenly():
    sampler = RandomSampler(
        _context({"lr": {"type": "float", "low": 1e-6, "high": 1.0, "scale": "log"}})
    )
    values = [c["lr"] for c in _run(sampler, 600)]
    decades = [sum(10.0**-k <= v < 10.0 ** (-k + 1) for v in values) for k in range(1, 7)]
    assert all(60 <= n <= 140 for n in decades), decades


def test_sobol_spreads_over_the_unit_square():
    raw = {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "float", "low": 0, "high": 1}}
    configs = _run(SobolSampler(_context(raw, seed=3)), 16)
    quadrants = {(c["a"] < 0.5, c["b"] < 0.5) for c in configs}
    assert len(quadrants) == 4
    cells = {(int(c["a"] * 4), int(c["b"] * 4)) for c in configs}
    assert len(cells) >= 12  # a random draw of 16 fills about 10 of 16 cells


def test_grid_is_the_full_product_in_a_seeded_order():
    raw = {
        "depth": {"type": "int", "low": 1, "high": 3},
        "act": {"type": "categorical", "choices": ["relu", "gelu"]},
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "fixed": {"type": "fixed", "value": "v"},
    }
    sampler = GridSampler(_context(raw, seed=1, grid_points=3))
    assert sampler.capacity() == 3 * 2 * 3
    configs = _run(sampler, 18)
    assert len({tuple(sorted(c.items())) for c in configs}) == 18
    assert {c["x"] for c in configs} == {0.0, 0.5, 1.0}
    with pytest.raises(SearchExhausted):
        sampler.suggest(_history_of(sampler, 18))
    assert _run(GridSampler(_context(raw, seed=1, grid_points=3)), 18) == configs
    assert _run(GridSampler(_context(raw, seed=2, grid_points=3)), 18) != configs


def _history_of(sampler, n):
    history = ListHistory()
    for _ in range(n):
        history.add(sampler.suggest(history))
    return history


@pytest.mark.parametrize(
    ("spec", "points", "expected"),
    [
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}, 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}, 5, [0.0, 0.3, 0.6, 0.9]),
        ({"type": "int", "low": 0, "high": 100, "step": 50}, 5, [0, 50, 100]),
        ({"type": "int", "low": 1, "high": 1000}, 4, [1, 334, 667, 1000]),
        (
            {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
            5,
            [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        ),
        ({"type": "float", "low": 2.0, "high": 2.0}, 5, [2.0]),
    ],
)
def test_grid_values_of_one_parameter(spec, points, expected):
    param = parse_space({"x": spec})["x"]
    values = param.grid(points)
    assert values == pytest.approx(expected, rel=1e-9)
    for value in values:
        param.validate(value, "x")


def test_grid_skips_configs_already_run_by_hand():
    raw = {"act": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]}}
    sampler = GridSampler(_context(raw))
    history = ListHistory(
        [TrialRecord(id=1, number=0, params={"act": "gelu"}, state=TrialState.COMPLETED)]
    )
    offered = []
    for _ in range(2):
        suggestion = sampler.suggest(history)
        offered.append(suggestion.params["act"])
        history.add(suggestion)
    assert sorted(offered) == ["relu", "tanh"]
    with pytest.raises(SearchExhausted):
        sampler.suggest(history)
