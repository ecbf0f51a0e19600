"""The grid sampler decodes its k-th point instead of enumerating the grid."""

from __future__ import annotations

import itertools
import time

import pytest

from app.engine import registry
from app.engine.base import Fidelity, StudyContext, TrialRecord, TrialState
from app.engine.samplers.grid import GridSampler, seeded_position
from app.engine.space import SearchSpace, parse_space
from tests.engine.test_space_properties import ListHistory

RAW = {
    "depth": {"type": "int", "low": 1, "high": 3},
    "act": {"type": "categorical", "choices": ["relu", "gelu", 1, 1.0, True]},
    "x": {"type": "float", "low": 1e-3, "high": 1.0, "scale": "log"},
    "fixed": {"type": "fixed", "value": "v"},
    "width": {"type": "int", "low": 8, "high": 64, "step": 8},
}


def _context(raw, seed=7, **options) -> StudyContext:
    return StudyContext(
        space=parse_space(raw), direction="minimize", metric="loss", seed=seed, options=options
    )


def test_kth_point_is_the_kth_of_the_full_enumeration():
    sampler = GridSampler(_context(RAW, grid_points=4))
    space = sampler.context.space
    enumerated = [
        dict(zip(space.names, combo, strict=True))
        for combo in itertools.product(*(param.grid(4) for param in space))
    ]
    assert sampler.capacity() == len(enumerated) == space.grid_size(4) == 3 * 5 * 4 * 1 * 4
    for index, config in enumerate(enumerated):
        point = sampler.point(index)
        # Typed: 1, 1.0 and True are different choices that Python finds equal.
        assert [(type(v), v) for v in point.values()] == [(type(v), v) for v in config.values()]
        assert sampler.index_of(point) == index


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 17, 100, 1000])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_the_seeded_order_visits_every_point_once(size, seed):
    assert sorted(seeded_position(p, size, seed) for p in range(size)) == list(range(size))


def test_the_order_depends_on_the_seed():
    first = [seeded_position(p, 1000, 1) for p in range(20)]
    assert first == [seeded_position(p, 1000, 1) for p in range(20)]
    assert first != [seeded_position(p, 1000, 2) for p in range(20)]
    assert first != list(range(20))


def test_a_huge_grid_costs_no_enumeration():
    raw = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(12)}
    sampler = GridSampler(_context(raw, grid_points=1000))
    assert sampler.capacity() == 1000**12
    history = ListHistory()
    started = time.perf_counter()
    for _ in range(50):
        history.add(sampler.suggest(history))
    assert time.perf_counter() - started < 2.0
    points = [r.extra["grid_point"] for r in history.records]
    assert len(set(points)) == 50
    for record in history.records:
        assert sampler.point(record.extra["grid_point"]) == record.params


def test_trials_of_an_older_version_are_recognised_by_their_params():
    # Before the lazy grid, a trial kept `grid_index` (a position in a shuffled list).
    sampler = GridSampler(_context({"act": {"type": "categorical", "choices": ["a", "b", "c"]}}))
    history = ListHistory(
        [
            TrialRecord(
                id=1,
                number=0,
                params={"act": "b"},
                state=TrialState.COMPLETED,
                extra={"grid_index": 0},
            ),
            TrialRecord(id=2, number=1, params={"act": "zzz"}, state=TrialState.COMPLETED),
        ]
    )
    offered = []
    for _ in range(2):
        suggestion = sampler.suggest(history)
        offered.append(suggestion.params["act"])
        history.add(suggestion)
    assert sorted(offered) == ["a", "c"]


def test_strategy_capacity_is_the_grid_size_for_a_grid_sampler_only():
    space = SearchSpace.from_dict(RAW)

    def capacity(strategy, fidelity=None):
        context = StudyContext(
            space=space, direction="minimize", metric="m", seed=1, options={}, fidelity=fidelity
        )
        return registry.build(strategy, None, context).capacity()

    assert capacity({"name": "grid"}) == space.grid_size(5)
    assert capacity({"name": "grid", "grid_points": 2}) == space.grid_size(2)
    fidelity = Fidelity(param="epoch", min=1, max=9, reduction_factor=3)
    assert capacity({"name": "asha", "sampler": "grid", "grid_points": 3}, fidelity) == (
        space.grid_size(3)
    )
    assert capacity({"name": "random"}) is None
    assert capacity({"name": "asha"}, fidelity) is None
