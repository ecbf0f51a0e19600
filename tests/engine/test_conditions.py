"""Conditional parameters: parsing, the 422 fields of invalid conditions, `active`, and
every config the samplers of this package hand out (grid, Sobol, random) holding exactly
the active parameters. The grid of a conditional space is checked against brute force:
every combination of every parameter's grid values, reduced to its active part."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine import registry
from app.engine.base import StudyContext
from app.engine.memory import MemoryStudy
from app.engine.samplers.grid import GridSampler
from app.engine.samplers.random import RandomSampler
from app.engine.samplers.sobol import SobolSampler
from app.engine.space import ConditionalGrid, SearchSpace, SpaceError, parse_space
from tests.engine.test_space_properties import ListHistory

OPTIMIZERS: dict[str, Any] = {
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    # Declared before its parent: the space orders parents first itself.
    "dampening": {"type": "float", "low": 0.0, "high": 0.5, "condition": {"nesterov": [False]}},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
    "nesterov": {
        "type": "categorical",
        "choices": [True, False],
        "condition": {"optimizer": ["sgd"]},
    },
    "beta1": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["adam"]}},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
}


def _context(space: SearchSpace, seed: int = 3, **options: Any) -> StudyContext:
    return StudyContext(
        space=space, direction="minimize", metric="loss", seed=seed, options=options
    )


def test_condition_round_trips_and_orders_parents_first():
    space = parse_space(OPTIMIZERS)
    assert space.conditional
    assert space.to_dict()["momentum"]["condition"] == {"optimizer": ["sgd"]}
    assert parse_space(space.to_dict()) == space
    order = [p.name for p in space.order]
    assert order.index("nesterov") < order.index("dampening")
    assert order.index("optimizer") < order.index("momentum")
    # The declaration order is kept for everything else (listing, configs).
    assert space.names == list(OPTIMIZERS)


def test_active_drops_inactive_and_their_descendants():
    space = parse_space(OPTIMIZERS)
    full = {"optimizer": "adam", "momentum": 0.9, "nesterov": False, "dampening": 0.1,
            "beta1": 0.9, "lr": 1e-3}  # fmt: skip
    assert space.active(full) == {"optimizer": "adam", "beta1": 0.9, "lr": 1e-3}
    # dampening hangs below nesterov: inactive with it, even though nesterov's value fits.
    full["optimizer"] = "sgd"
    assert space.active(full) == {
        "optimizer": "sgd", "momentum": 0.9, "nesterov": False, "dampening": 0.1, "lr": 1e-3
    }  # fmt: skip
    full["nesterov"] = True
    assert "dampening" not in space.active(full)


def test_from_unit_returns_only_active_parameters():
    space = parse_space(OPTIMIZERS)
    low = space.from_unit([0.1] * len(space.searchable))  # sgd, nesterov True
    assert set(low) == {"optimizer", "momentum", "nesterov", "lr"}
    high = space.from_unit([0.9] * len(space.searchable))  # adam
    assert set(high) == {"optimizer", "beta1", "lr"}
    assert space.validate(low) == low and space.validate(high) == high


def test_validate_refuses_an_inactive_parameter_and_wants_every_active_one():
    space = parse_space(OPTIMIZERS)
    with pytest.raises(SpaceError) as caught:
        space.validate({"optimizer": "adam", "beta1": 0.9, "lr": 1e-3, "momentum": 0.9})
    assert caught.value.field == "params.momentum"
    assert "inactive" in caught.value.detail
    with pytest.raises(SpaceError) as caught:
        space.validate({"optimizer": "sgd", "lr": 1e-3, "nesterov": True})
    assert caught.value.field == "params.momentum"
    assert "missing" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (
            {"x": {"type": "int", "low": 0, "high": 3, "condition": {"x": [1]}}},
            "space.x.condition.x",
            "itself",
        ),
        (
            {"x": {"type": "int", "low": 0, "high": 3, "condition": {"nope": [1]}}},
            "space.x.condition.nope",
            "not a parameter",
        ),
        (
            {
                "a": {"type": "categorical", "choices": ["p", "q"], "condition": {"b": [1]}},
                "b": {"type": "int", "low": 0, "high": 3, "condition": {"a": ["p"]}},
            },
            "space.a.condition",
            "cycle: a -> b -> a",
        ),
        (
            {
                "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
                "m": {"type": "float", "low": 0, "high": 1, "condition": {"opt": ["rmsprop"]}},
            },
            "space.m.condition.opt.0",
            "impossible",
        ),
        (
            {
                "n": {"type": "int", "low": 1, "high": 4},
                "m": {"type": "float", "low": 0, "high": 1, "condition": {"n": [2, 9]}},
            },
            "space.m.condition.n.1",
            "impossible",
        ),
        (
            {
                "f": {"type": "fixed", "value": "a"},
                "m": {"type": "float", "low": 0, "high": 1, "condition": {"f": ["b"]}},
            },
            "space.m.condition.f.0",
            "fixed",
        ),
        (
            {
                "x": {"type": "float", "low": 0, "high": 1},
                "m": {"type": "float", "low": 0, "high": 1, "condition": {"x": [0.5]}},
            },
            "space.m.condition.x",
            "float",
        ),
        (
            {
                "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
                "mom": {
                    "type": "categorical",
                    "choices": ["on", "off"],
                    "condition": {"opt": ["sgd"]},
                },
                "beta": {
                    "type": "float",
                    "low": 0,
                    "high": 1,
                    "condition": {"opt": ["adam"], "mom": ["on"]},
                },
            },
            "space.beta.condition",
            "can never hold",
        ),  # fmt: skip
        (
            {"x": {"type": "int", "low": 0, "high": 3, "condition": ["y"]}},
            "space.x.condition",
            "object",
        ),
        (
            {
                "y": {"type": "int", "low": 0, "high": 3},
                "x": {"type": "int", "low": 0, "high": 3, "condition": {"y": []}},
            },
            "space.x.condition.y",
            "non-empty",
        ),
        (
            {
                "y": {"type": "int", "low": 0, "high": 3},
                "x": {"type": "int", "low": 0, "high": 3, "condition": {"y": [[1]]}},
            },
            "space.x.condition.y.0",
            "string, number or boolean",
        ),
    ],
)
def test_invalid_conditions_name_their_field(raw, field, words):
    with pytest.raises(SpaceError) as caught:
        parse_space(raw)
    assert caught.value.field == field
    assert words in caught.value.detail


def test_values_are_taken_as_the_parents_own():
    space = parse_space(
        {
            "n": {"type": "int", "low": 1, "high": 4},
            "flag": {"type": "categorical", "choices": [1, True]},
            "a": {"type": "float", "low": 0, "high": 1, "condition": {"n": [2.0]}},
            "b": {"type": "float", "low": 0, "high": 1, "condition": {"flag": [True]}},
        }
    )
    assert space["a"].condition is not None and space["a"].condition.clauses == (("n", (2,)),)
    # True and 1 are different choices: b follows True only.
    assert space.is_active("b", {"flag": True}) and not space.is_active("b", {"flag": 1})


def _brute_force(space: SearchSpace, points: int) -> set[tuple[Any, ...]]:
    # The grid's own axes: an int parent's grid also holds the values its children name.
    axes = ConditionalGrid(space, points).axes
    grids = [axes[name] for name in space.names]
    configs = set()
    for combo in itertools.product(*grids):
        active = space.active(dict(zip(space.names, combo, strict=True)))
        configs.add(_key(active))
    return configs


def _key(config: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((name, type(value).__name__, value) for name, value in config.items()))


def test_grid_counts_branches_and_never_repeats_a_config():
    space = parse_space(OPTIMIZERS)
    grid = ConditionalGrid(space, 3)
    # sgd: momentum 3 x (nesterov True + nesterov False x dampening 3) = 12; adam: beta1 3.
    assert grid.size == space.grid_size(3) == (12 + 3) * 3
    points = [grid.point(k) for k in range(grid.size)]
    assert {_key(p) for p in points} == _brute_force(space, 3)
    assert len({_key(p) for p in points}) == grid.size
    for k, point in enumerate(points):
        assert space.validate(point) == point
        assert grid.index_of(point) == k
    # A config with an inactive value, or missing an active one, is not a grid point.
    assert grid.index_of({**points[0], "beta1": 0.8, "momentum": 0.5}) is None


def test_grid_sampler_walks_the_condition_tree_to_exhaustion():
    space = parse_space(OPTIMIZERS)
    sampler = GridSampler(_context(space, grid_points=3))
    history = ListHistory()
    for _ in range(sampler.capacity()):
        suggestion = sampler.suggest(history)
        assert space.validate(suggestion.params) == suggestion.params
        history.add(suggestion)
    seen = {_key(dict(r.params)) for r in history.records}
    assert len(seen) == sampler.capacity() == 45


def test_int_parent_grid_includes_the_values_children_wait_for():
    space = parse_space(
        {
            "layers": {"type": "int", "low": 1, "high": 100},
            "skip": {"type": "categorical", "choices": ["a", "b"], "condition": {"layers": [37]}},
        }
    )
    grid = ConditionalGrid(space, 5)
    configs = [grid.point(k) for k in range(grid.size)]
    assert {"layers": 37, "skip": "a"} in configs and {"layers": 37, "skip": "b"} in configs


def test_many_parents_declared_first_keep_the_grid_cheap():
    """Twenty switches declared before their twenty children: each child is read right
    after its switch, so the grid of 3^20 configs is numbered without a memo of 2^20
    parent states."""
    raw: dict[str, Any] = {
        f"use{k}": {"type": "categorical", "choices": [True, False]} for k in range(20)
    }
    raw |= {
        f"size{k}": {"type": "int", "low": 1, "high": 2, "condition": {f"use{k}": [True]}}
        for k in range(20)
    }
    space = parse_space(raw)
    started = time.perf_counter()
    grid = ConditionalGrid(space, 3)
    assert grid.size == 3**20  # per pair: off, or on with size 1 or 2
    last = grid.point(grid.size - 1)
    assert grid.index_of(last) == grid.size - 1
    assert space.validate(last) == last
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("sampler_class", [RandomSampler, SobolSampler])
def test_random_and_sobol_hand_out_active_parameters_only(sampler_class):
    space = parse_space(OPTIMIZERS)
    sampler = sampler_class(_context(space))
    history = ListHistory()
    branches = set()
    for _ in range(64):
        suggestion = sampler.suggest(history)
        assert space.validate(suggestion.params) == suggestion.params
        branches.add((suggestion.params["optimizer"], suggestion.params.get("nesterov")))
        history.add(suggestion)
    assert branches == {("adam", None), ("sgd", True), ("sgd", False)}


def test_to_unit_takes_a_value_for_missing_parameters():
    space = parse_space(OPTIMIZERS)
    config = {"optimizer": "adam", "beta1": 0.9, "lr": 1e-3}
    coords = space.to_unit(config, missing=0.5)
    assert len(coords) == len(space.searchable) and coords[1] == 0.5
    with pytest.raises(KeyError):
        space.to_unit(config)


# --- Properties over random condition trees --------------------------------------------

names = [f"p{k}" for k in range(6)]


@st.composite
def conditional_space(draw: st.DrawFn) -> dict[str, Any]:
    """Up to six parameters, each possibly conditional on one or two earlier discrete
    ones; declared in a shuffled order."""
    count = draw(st.integers(1, 6))
    specs: dict[str, dict[str, Any]] = {}
    discrete: list[tuple[str, list[Any]]] = []
    for name in names[:count]:
        kind = draw(st.sampled_from(["categorical", "int", "float", "fixed"]))
        if kind == "categorical":
            choices = draw(
                st.lists(st.sampled_from(["a", "b", "c", 1, True]), min_size=1, max_size=3,
                         unique_by=lambda v: (type(v), v))
            )  # fmt: skip
            spec: dict[str, Any] = {"type": "categorical", "choices": choices}
            values = choices
        elif kind == "int":
            high = draw(st.integers(0, 3))
            spec = {"type": "int", "low": 0, "high": high}
            values = list(range(high + 1))
        elif kind == "fixed":
            spec = {"type": "fixed", "value": "v"}
            values = ["v"]
        else:
            spec = {"type": "float", "low": 0.0, "high": 1.0}
            values = []
        if discrete and draw(st.booleans()):
            parents = draw(
                st.lists(st.sampled_from(discrete), min_size=1, max_size=2, unique_by=lambda d: d[0])
            )  # fmt: skip
            spec["condition"] = {
                parent: draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=len(allowed)))
                for parent, allowed in parents
            }
        specs[name] = spec
        if values:
            discrete.append((name, values))
    order = draw(st.permutations(list(specs)))
    return {name: specs[name] for name in order}


@given(conditional_space(), st.data())
@settings(max_examples=400, deadline=None)
def test_random_condition_trees(raw, data):
    try:
        space = parse_space(raw)
    except SpaceError as error:
        # Only a condition that truly never holds may be refused: check by brute force.
        assert "can never hold" in error.detail, error
        name = error.field.split(".")[1]
        unchecked = SearchSpace(tuple(_unchecked(raw)))
        assert all(name not in cfg for cfg in _configs(unchecked, 3))
        return
    assert parse_space(space.to_dict()) == space
    grid = ConditionalGrid(space, 3)
    points = [grid.point(k) for k in range(grid.size)]
    assert {_key(p) for p in points} == _brute_force(space, 3)
    # Accepted: every parameter is active in some config (the grid's axes hold every
    # value a condition names).
    assert {name for p in points for name in p} == set(space.names)
    assert len({_key(p) for p in points}) == len(points)
    for k, point in enumerate(points):
        assert space.validate(point) == point
        assert grid.index_of(point) == k
    coords = data.draw(
        st.lists(
            st.floats(0.0, 1.0), min_size=len(space.searchable), max_size=len(space.searchable)
        )
    )
    config = space.from_unit(coords)
    assert space.validate(config) == config


def _unchecked(raw: dict[str, Any]) -> list[Any]:
    from app.engine.space import parse_param

    return [parse_param(name, spec, f"space.{name}") for name, spec in raw.items()]


def _configs(space: SearchSpace, points: int) -> list[dict[str, Any]]:
    grids = [param.grid(points) for param in space]
    return [
        space.active(dict(zip(space.names, combo, strict=True)))
        for combo in itertools.product(*grids)
    ]


# --- Every sampler of the registry on a conditional space ------------------------------


def _mo_context(space: SearchSpace, seed: int) -> StudyContext:
    from app.engine.pareto import ConstraintSpec, ObjectiveSpec

    return StudyContext(
        space=space,
        direction="minimize",
        metric="loss",
        seed=seed,
        options={},
        objectives=(ObjectiveSpec("loss", "minimize"), ObjectiveSpec("latency", "minimize")),
        constraints=(ConstraintSpec("memory", "<=", 1.0),),
    )


@pytest.mark.parametrize("name", sorted(registry.SAMPLERS))
def test_every_sampler_hands_out_active_parameters_only(name):
    """Past their random start-up (10 trials), model-based samplers build configs from
    observed ones, some with and some without each conditional parameter."""
    space = parse_space(OPTIMIZERS)
    multi = name in ("nsga2", "motpe")
    context = _mo_context(space, 2) if multi else _context(space, 2)
    study = MemoryStudy(registry.build({"name": name}, None, context), context)
    for k in range(24):
        asked = study.ask()
        assert asked is not None
        record, _ = asked
        assert space.validate(record.params) == record.params, (name, k, record.params)
        loss = 0.1 * k % 1.0 + (0.0 if record.params["optimizer"] == "adam" else 0.3)
        if multi:
            study.tell(record.id, [loss, 1.0 - loss], constraints=[0.5 + 0.05 * (k % 3)])
        else:
            study.tell(record.id, loss)


def test_interlocked_conditions_are_refused_for_a_grid_not_hung_on():
    """Thirty parents each read with a parent seven places on: no order keeps the set of
    parents still to be read small. The space parses (the proof that every condition can
    hold gives up quickly), and a grid over it is refused with a reason, in bounded time."""
    raw: dict[str, Any] = {
        f"use{k}": {"type": "categorical", "choices": ["a", "b", "c"]} for k in range(30)
    }
    raw |= {
        f"size{k}": {
            "type": "int",
            "low": 1,
            "high": 2,
            "condition": {f"use{k}": ["a"], f"use{(k + 7) % 30}": ["b", "c"]},
        }
        for k in range(30)
    }
    started = time.perf_counter()
    space = parse_space(raw)
    with pytest.raises(SpaceError) as caught:
        ConditionalGrid(space, 3)
    assert caught.value.field == "space" and "another sampler" in caught.value.detail
    assert time.perf_counter() - started < 10.0
