"""Property tests: every config a sampler suggests lies in its space, and the unit-cube
transforms (to_unit / from_unit) agree with validate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.engine.base import StudyContext, Suggestion, TrialRecord, TrialState
from app.engine.samplers.grid import GridSampler
from app.engine.samplers.random import RandomSampler
from app.engine.samplers.sobol import SobolSampler
from app.engine.space import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    SearchSpace,
    SpaceError,
    parse_space,
)

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def float_linear(draw: st.DrawFn) -> dict[str, Any]:
    low, high = sorted((draw(finite), draw(finite)))
    spec: dict[str, Any] = {"type": "float", "low": low, "high": high}
    if high > low and draw(st.booleans()):
        # Steps from a whole fraction of the range to ones that do not divide it.
        spec["step"] = (
            (high - low) / draw(st.integers(1, 1000)) * draw(st.sampled_from([1.0, 0.7, 0.33]))
        )
    return spec


@st.composite
def float_log(draw: st.DrawFn) -> dict[str, Any]:
    low, high = sorted((draw(positive), draw(positive)))
    return {"type": "float", "low": low, "high": high, "scale": "log"}


@st.composite
def float_reverse_log(draw: st.DrawFn) -> dict[str, Any]:
    below_one = st.floats(min_value=0.0, max_value=0.999999, allow_nan=False)
    low, high = sorted((draw(below_one), draw(below_one)))
    return {"type": "float", "low": low, "high": high, "scale": "reverse_log"}


@st.composite
def int_param(draw: st.DrawFn) -> dict[str, Any]:
    scale = draw(st.sampled_from(["linear", "log"]))
    bound = st.integers(1, 10**6) if scale == "log" else st.integers(-(10**6), 10**6)
    low, high = sorted((draw(bound), draw(bound)))
    spec: dict[str, Any] = {"type": "int", "low": low, "high": high, "scale": scale}
    if high > low and draw(st.booleans()):
        spec["step"] = draw(st.integers(1, high - low))
    return spec


scalar = st.one_of(
    st.text(min_size=0, max_size=8),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)


@st.composite
def categorical(draw: st.DrawFn) -> dict[str, Any]:
    choices = draw(st.lists(scalar, min_size=1, max_size=6))
    unique: list[Any] = []
    seen: set[tuple[str, Any]] = set()
    for choice in choices:
        key = (type(choice).__name__, choice)
        if key not in seen:
            seen.add(key)
            unique.append(choice)
    return {"type": "categorical", "choices": unique}


fixed = scalar.map(lambda value: {"type": "fixed", "value": value})
param_spec = st.one_of(
    float_linear(), float_log(), float_reverse_log(), int_param(), categorical(), fixed
)
raw_space = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True), param_spec, min_size=1, max_size=5
)


def _same(param: Any, a: Any, b: Any) -> bool:
    if isinstance(param, FloatParam):
        width = max(abs(param.high), abs(param.low), 1e-300)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * width)
    return bool(a == b and type(a) is type(b))


@given(raw_space, st.data())
@settings(max_examples=300, deadline=None)
def test_from_unit_lies_in_the_space_and_round_trips(raw, data):
    space = parse_space(raw)
    point = data.draw(
        st.lists(unit, min_size=len(space.searchable), max_size=len(space.searchable))
    )
    config = space.from_unit(point)
    assert space.validate(config) == config
    coords = space.to_unit(config)
    assert all(0.0 <= u <= 1.0 for u in coords)
    again = space.from_unit(coords)
    for param in space:
        assert _same(param, again[param.name], config[param.name]), (param, config, again)


@given(raw_space)
@settings(max_examples=200, deadline=None)
def test_space_survives_its_own_dict_form(raw):
    space = parse_space(raw)
    assert parse_space(space.to_dict()) == space


@given(st.one_of(float_linear(), float_log(), float_reverse_log(), int_param()), unit)
@settings(max_examples=300, deadline=None)
def test_numeric_transforms_are_monotonic_and_hit_the_ends(spec, u):
    param = parse_space({"x": spec})["x"]
    assert isinstance(param, FloatParam | IntParam)
    width = max(abs(param.low), abs(param.high), 1e-300)
    bottom, top = param.from_unit(0.0), param.from_unit(1.0)
    assert param.low <= bottom <= top <= param.high
    assert math.isclose(bottom, param.low, rel_tol=1e-9, abs_tol=1e-12 * width)
    if param.step is None or param.step == 1 or (param.high - param.low) % param.step == 0:
        assert math.isclose(top, param.high, rel_tol=1e-9, abs_tol=1e-12 * width)
    lower = param.from_unit(u * 0.5)
    assert lower <= param.from_unit(u) <= top
    param.validate(param.from_unit(u), "x")


@given(st.one_of(float_linear(), int_param()), finite)
@settings(max_examples=300, deadline=None)
def test_validate_accepts_exactly_the_values_inside(spec, value):
    param = parse_space({"x": spec})["x"]
    assert isinstance(param, FloatParam | IntParam)
    if isinstance(param, IntParam):
        value = round(value)
    inside = param.low <= value <= param.high
    try:
        param.validate(value, "params.x")
    except SpaceError as error:
        assert error.field == "params.x"
        if inside and param.step in (None, 1):
            raise AssertionError(f"{value} is inside {param} but was refused") from error
    else:
        assert inside


@given(categorical(), st.data())
@settings(max_examples=200, deadline=None)
def test_categorical_to_unit_and_back_is_the_identity(spec, data):
    param = parse_space({"x": spec})["x"]
    assert isinstance(param, CategoricalParam)
    choice = data.draw(st.sampled_from(param.choices))
    back = param.from_unit(param.to_unit(choice))
    assert back == choice and type(back) is type(choice)


# Samplers -----------------------------------------------------------------------------


class ListHistory:
    def __init__(self, records: Sequence[TrialRecord] = ()) -> None:
        self.records = list(records)

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        if states is None:
            return self.records
        return [r for r in self.records if r.state in states]

    def count(self) -> int:
        return len(self.records)

    def add(self, suggestion: Suggestion) -> None:
        number = len(self.records)
        self.records.append(
            TrialRecord(
                id=number + 1,
                number=number,
                params=dict(suggestion.params),
                state=TrialState.RUNNING,
                extra=dict(suggestion.extra),
            )
        )


def _context(space: SearchSpace, seed: int, **options: Any) -> StudyContext:
    return StudyContext(
        space=space, direction="minimize", metric="loss", seed=seed, options=options
    )


@given(raw_space, st.integers(0, 2**31 - 1), st.sampled_from([RandomSampler, SobolSampler]))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_and_sobol_suggest_configs_in_the_space(raw, seed, sampler_class):
    space = parse_space(raw)
    sampler = sampler_class(_context(space, seed))
    history = ListHistory()
    for _ in range(8):
        suggestion = sampler.suggest(history)
        assert space.validate(suggestion.params) == dict(suggestion.params)
        assert suggestion.resume_trial_id is None
        history.add(suggestion)


@given(raw_space, st.integers(0, 2**31 - 1), st.integers(1, 4))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_grid_suggests_each_point_once_and_all_in_the_space(raw, seed, points):
    space = parse_space(raw)
    assume(space.grid_size(points) <= 400)
    sampler = GridSampler(_context(space, seed, grid_points=points))
    assert sampler.capacity() == space.grid_size(points)
    history = ListHistory()
    # Typed keys: a categorical may offer both 0 and 0.0, which Python finds equal.
    seen: set[tuple[tuple[str, str, Any], ...]] = set()
    for _ in range(sampler.capacity()):
        suggestion = sampler.suggest(history)
        config = dict(suggestion.params)
        assert space.validate(config) == config
        key = tuple((name, type(value).__name__, value) for name, value in config.items())
        assert key not in seen
        seen.add(key)
        history.add(suggestion)
    try:
        sampler.suggest(history)
    except Exception as error:  # noqa: BLE001 - the exhausted grid says so
        assert type(error).__name__ == "SearchExhausted"
    else:
        raise AssertionError("a used-up grid suggested again")


def test_fixed_and_empty_searchable_spaces():
    space = SearchSpace((FixedParam("epochs", 3),))
    for sampler_class in (RandomSampler, SobolSampler, GridSampler):
        assert dict(sampler_class(_context(space, 1)).suggest(ListHistory()).params) == {
            "epochs": 3
        }
