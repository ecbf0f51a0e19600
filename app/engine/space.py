"""Search spaces: parameter definitions, validation, sampling transforms and grids.

Every numeric parameter maps to the unit interval through its scale, so that samplers
(random, Sobol, Gaussian processes) work in one coordinate system and the space alone
knows about logs, steps and integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from app.engine.errors import ConfigError
from app.engine.options import DEFAULT_GRID_POINTS
from app.engine.priors import Prior, parse_prior

Scale = Literal["linear", "log", "reverse_log"]
ParamValue = float | int | str | bool

MAX_PARAMETERS = 64
MAX_CHOICES = 1000
MAX_NAME_LENGTH = 64


class SpaceError(ConfigError):
    """A search space, or a config that does not fit it."""


def same_value(left: Any, right: Any) -> bool:
    """Equal as parameter values: 1 and 1.0 match, True and 1 do not (a categorical may
    offer both)."""
    return isinstance(left, bool) == isinstance(right, bool) and left == right


@dataclass(frozen=True)
class Condition:
    """When a parameter is active: every parent is active and has one of its allowed values.

    ``"condition": {"optimizer": ["sgd"], "nesterov": [true]}`` reads "only when the
    optimizer is sgd and nesterov is on". A tuple of pairs rather than a dict keeps the
    parameter dataclasses hashable."""

    clauses: tuple[tuple[str, tuple[ParamValue, ...]], ...]

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(parent for parent, _ in self.clauses)

    def holds(self, config: Mapping[str, Any]) -> bool:
        """Whether the condition holds in `config`, a config of active parameters only."""
        for parent, allowed in self.clauses:
            if parent not in config:
                return False
            value = config[parent]
            if not any(same_value(value, choice) for choice in allowed):
                return False
        return True

    def to_dict(self) -> dict[str, list[ParamValue]]:
        return {parent: list(allowed) for parent, allowed in self.clauses}

    def describe(self) -> str:
        return " and ".join(f"{parent} in {list(allowed)!r}" for parent, allowed in self.clauses)


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    scale: Scale = "linear"
    step: float | None = None
    type: Literal["float"] = "float"
    prior: Prior | None = None
    condition: Condition | None = None

    def to_unit(self, value: float) -> float:
        low, high = self.low, self.high
        if self.scale == "log":
            start, end, at = math.log(low), math.log(high), math.log(value)
        elif self.scale == "reverse_log":
            # Dense near `high`: 1 - value is log-uniform. Used for momentum and betas.
            start, end, at = math.log1p(-low), math.log1p(-high), math.log1p(-value)
        else:
            start, end, at = low, high, value
        # One point, or a range narrower than its scale resolves (1e-12 to 1e-12 + ulp).
        if end == start:
            return 0.5
        return min(1.0, max(0.0, (at - start) / (end - start)))

    def from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, u))
        low, high = self.low, self.high
        if self.scale == "log":
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        elif self.scale == "reverse_log":
            value = -math.expm1(math.log1p(-low) + u * (math.log1p(-high) - math.log1p(-low)))
        else:
            value = low + u * (high - low)
        return self.quantize(value)

    def quantize(self, value: float) -> float:
        if self.step is not None:
            count = round((value - self.low) / self.step)
            value = self.low + count * self.step
            # Steps that do not divide the range end below `high`.
            # The tolerance scales with the step, so that tiny ranges (1e-60) work too.
            while value > self.high + 1e-9 * self.step:
                value -= self.step
            # Drop float noise (0.30000000000000004) at any magnitude, not only above 1e-12.
            value = float(f"{value:.15g}")
        return min(self.high, max(self.low, value))

    def validate(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpaceError(path, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < self.low or number > self.high:
            raise SpaceError(path, f"{value!r} is outside [{self.low}, {self.high}]")
        if self.step is not None:
            count = (number - self.low) / self.step
            if abs(count - round(count)) > 1e-6:
                raise SpaceError(path, f"{value!r} is not on the grid low + k * {self.step}")
        return number

    def grid(self, points: int) -> list[float]:
        if self.step is not None:
            count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
            if count <= points:
                return [self.quantize(self.low + k * self.step) for k in range(count)]
        if points == 1:
            return [self.from_unit(0.5)]
        values = [self.from_unit(k / (points - 1)) for k in range(points)]
        return list(dict.fromkeys(values))


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int
    scale: Literal["linear", "log"] = "linear"
    step: int = 1
    type: Literal["int"] = "int"
    prior: Prior | None = None
    condition: Condition | None = None

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def to_unit(self, value: int) -> float:
        if self.high == self.low:
            return 0.5
        if self.scale == "log":
            # Widen by half a unit so that both ends get the same share of the interval.
            lo, hi = (
                math.log(self.low - 0.5 + 1e-9 if self.low > 0.5 else 0.5),
                math.log(self.high + 0.5),
            )
            return min(1.0, max(0.0, (math.log(value) - lo) / (hi - lo)))
        return min(1.0, max(0.0, (value - self.low + 0.5 * self.step) / (self.size * self.step)))

    def from_unit(self, u: float) -> int:
        u = min(1.0, max(0.0, u))
        if self.scale == "log":
            lo, hi = (
                math.log(self.low - 0.5 + 1e-9 if self.low > 0.5 else 0.5),
                math.log(self.high + 0.5),
            )
            raw = math.exp(lo + u * (hi - lo))
        else:
            raw = self.low - 0.5 * self.step + u * self.size * self.step
        return self.quantize(raw)

    def quantize(self, value: float) -> int:
        count = round((value - self.low) / self.step)
        count = min(self.size - 1, max(0, count))
        return int(self.low + count * self.step)

    def validate(self, value: Any, path: str) -> int:
        if isinstance(value, bool):
            raise SpaceError(path, f"must be an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise SpaceError(path, f"must be an integer, got {value!r}")
        if value < self.low or value > self.high:
            raise SpaceError(path, f"{value!r} is outside [{self.low}, {self.high}]")
        if (value - self.low) % self.step:
            raise SpaceError(path, f"{value!r} is not on the grid low + k * {self.step}")
        return value

    def grid(self, points: int) -> list[int]:
        if self.size <= points:
            return [self.low + k * self.step for k in range(self.size)]
        if points == 1:
            return [self.from_unit(0.5)]
        values = [self.from_unit(k / (points - 1)) for k in range(points)]
        return list(dict.fromkeys(values))


@dataclass(frozen=True)
class CategoricalParam:
    name: str
    choices: tuple[ParamValue, ...]
    type: Literal["categorical"] = "categorical"
    prior: Prior | None = None
    condition: Condition | None = None

    def index(self, value: ParamValue) -> int:
        for position, choice in enumerate(self.choices):
            if choice == value and type(choice) is type(value):
                return position
        return self.choices.index(value)

    def from_unit(self, u: float) -> ParamValue:
        position = min(len(self.choices) - 1, int(max(0.0, u) * len(self.choices)))
        return self.choices[position]

    def to_unit(self, value: ParamValue) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def validate(self, value: Any, path: str) -> ParamValue:
        if value not in self.choices:
            raise SpaceError(path, f"{value!r} is not one of {list(self.choices)!r}")
        return self.choices[self.index(value)]

    def grid(self, points: int) -> list[ParamValue]:
        return list(self.choices)


@dataclass(frozen=True)
class FixedParam:
    name: str
    value: ParamValue
    type: Literal["fixed"] = "fixed"
    condition: Condition | None = None

    def from_unit(self, u: float) -> ParamValue:
        return self.value

    def to_unit(self, value: ParamValue) -> float:
        return 0.5

    def validate(self, value: Any, path: str) -> ParamValue:
        if value != self.value:
            raise SpaceError(path, f"is fixed at {self.value!r}")
        return self.value

    def grid(self, points: int) -> list[ParamValue]:
        return [self.value]


Param = FloatParam | IntParam | CategoricalParam | FixedParam
NumericParam = FloatParam | IntParam


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    _by_name: Mapping[str, Param] = field(default_factory=dict, compare=False, repr=False)

    _order: tuple[Param, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "_order", _dependency_order(self.params))

    @property
    def conditional(self) -> bool:
        """Whether some parameter exists only under a condition."""
        return any(p.condition is not None for p in self.params)

    @property
    def order(self) -> tuple[Param, ...]:
        """The parameters with every parent before its children (declaration order
        otherwise): the order in which a sampler decides what is active."""
        return self._order

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` without the parameters whose condition does not hold (and without
        those whose parent is itself inactive), in the order of the space."""
        if not self.conditional:
            return {p.name: config[p.name] for p in self.params if p.name in config}
        kept: dict[str, Any] = {}
        for param in self._order:
            if param.name not in config:
                continue
            if param.condition is None or param.condition.holds(kept):
                kept[param.name] = config[param.name]
        return {p.name: kept[p.name] for p in self.params if p.name in kept}

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether parameter `name` is active in `config` (a config of active parameters:
        the trial's params)."""
        condition = self._by_name[name].condition
        return condition is None or condition.holds(config)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def searchable(self) -> list[Param]:
        """Parameters a sampler chooses: everything but fixed values."""
        return [p for p in self.params if not isinstance(p, FixedParam)]

    def from_unit(self, point: Sequence[float]) -> dict[str, ParamValue]:
        """A config from a point of the unit cube over `searchable` (fixed values added).

        Only active parameters are returned: the coordinates of inactive ones are read
        and ignored, so that the cube keeps one dimension per searchable parameter."""
        config: dict[str, ParamValue] = {}
        coords = iter(point)
        for param in self.params:
            if isinstance(param, FixedParam):
                config[param.name] = param.value
            else:
                config[param.name] = param.from_unit(next(coords))
        return self.active(config) if self.conditional else config

    def to_unit(self, config: Mapping[str, Any], missing: float | None = None) -> list[float]:
        """Unit coordinates over `searchable`; a parameter absent from `config` (inactive)
        takes `missing`, or raises KeyError when `missing` is None."""
        if missing is None:
            return [p.to_unit(config[p.name]) for p in self.searchable]
        return [p.to_unit(config[p.name]) if p.name in config else missing for p in self.searchable]

    def validate(self, config: Mapping[str, Any], path: str = "params") -> dict[str, ParamValue]:
        """A complete config checked against the space; fixed values may be omitted.

        Every active parameter is required; an inactive one (its condition does not hold)
        is refused rather than dropped, because a value the run would never see is most
        likely a mistake in the caller's config."""
        unknown = [name for name in config if name not in self._by_name]
        if unknown:
            raise SpaceError(f"{path}.{unknown[0]}", "is not a parameter of the search space")
        checked: dict[str, ParamValue] = {}
        for param in self._order:
            if param.condition is not None and not param.condition.holds(checked):
                if param.name in config and not isinstance(param, FixedParam):
                    raise SpaceError(
                        f"{path}.{param.name}",
                        f"is inactive: its condition ({param.condition.describe()}) "
                        "does not hold; leave it out",
                    )
                continue
            if param.name not in config:
                if isinstance(param, FixedParam):
                    checked[param.name] = param.value
                    continue
                raise SpaceError(f"{path}.{param.name}", "is missing")
            checked[param.name] = param.validate(config[param.name], f"{path}.{param.name}")
        return {p.name: checked[p.name] for p in self.params if p.name in checked}

    def grid_size(self, points: int = DEFAULT_GRID_POINTS) -> int:
        """Distinct configs of the grid: a conditional space counts each branch of its
        condition tree, never an inactive parameter's values."""
        return ConditionalGrid(self, points).size

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {p.name: param_to_dict(p) for p in self.params}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], path: str = "space") -> SearchSpace:
        return parse_space(raw, path)


def param_to_dict(param: Param) -> dict[str, Any]:
    out = _param_to_dict(param)
    prior = getattr(param, "prior", None)
    if prior is not None:
        out["prior"] = prior.to_dict()
    if param.condition is not None:
        out["condition"] = param.condition.to_dict()
    return out


def _param_to_dict(param: Param) -> dict[str, Any]:
    if isinstance(param, FloatParam):
        out: dict[str, Any] = {"type": "float", "low": param.low, "high": param.high}
        out["scale"] = param.scale
        if param.step is not None:
            out["step"] = param.step
        return out
    if isinstance(param, IntParam):
        return {
            "type": "int",
            "low": param.low,
            "high": param.high,
            "scale": param.scale,
            "step": param.step,
        }
    if isinstance(param, CategoricalParam):
        return {"type": "categorical", "choices": list(param.choices)}
    return {"type": "fixed", "value": param.value}


_ALLOWED_KEYS = {
    "float": {"type", "low", "high", "scale", "step", "role", "prior", "condition"},
    "int": {"type", "low", "high", "scale", "step", "role", "prior", "condition"},
    "categorical": {"type", "choices", "role", "prior", "condition"},
    "fixed": {"type", "value", "role", "condition"},
}


def _number(raw: Mapping[str, Any], key: str, path: str) -> float:
    if key not in raw:
        raise SpaceError(f"{path}.{key}", "is required")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpaceError(f"{path}.{key}", f"must be a finite number, got {value!r}")
    return float(value)


def _integer(raw: Mapping[str, Any], key: str, path: str) -> int:
    value = _number(raw, key, path)
    if not value.is_integer():
        raise SpaceError(f"{path}.{key}", f"must be an integer, got {raw[key]!r}")
    return int(value)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def parse_param(name: str, raw: Any, path: str) -> Param:
    param = _parse_param(name, raw, path)
    if isinstance(raw, Mapping) and raw.get("prior") is not None:
        prior = parse_prior(raw["prior"], param, f"{path}.prior")
        param = replace(param, prior=prior)  # type: ignore[arg-type]
    if isinstance(raw, Mapping) and raw.get("condition") is not None:
        condition = _parse_condition(raw["condition"], f"{path}.condition")
        param = replace(param, condition=condition)
    return param


def _parse_param(name: str, raw: Any, path: str) -> Param:
    if not isinstance(raw, Mapping):
        raise SpaceError(path, "must be an object with a `type`")
    kind = raw.get("type")
    if kind not in _ALLOWED_KEYS:
        raise SpaceError(
            f"{path}.type", f"unknown type {kind!r}; use float, int, categorical or fixed"
        )
    extra = sorted(set(raw) - _ALLOWED_KEYS[kind])
    if extra:
        raise SpaceError(f"{path}.{extra[0]}", f"is not a field of a {kind} parameter")

    if kind == "fixed":
        if "value" not in raw:
            raise SpaceError(f"{path}.value", "is required")
        if not _is_scalar(raw["value"]):
            raise SpaceError(f"{path}.value", "must be a string, number or boolean")
        return FixedParam(name, raw["value"])

    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{path}.choices", "must be a non-empty list")
        if len(choices) > MAX_CHOICES:
            raise SpaceError(
                f"{path}.choices", f"has {len(choices)} choices; at most {MAX_CHOICES}"
            )
        for position, choice in enumerate(choices):
            if not _is_scalar(choice):
                raise SpaceError(
                    f"{path}.choices.{position}", "must be a string, number or boolean"
                )
        keys = [(type(c).__name__, c) for c in choices]
        if len(set(keys)) != len(keys):
            raise SpaceError(f"{path}.choices", "must not repeat a choice")
        return CategoricalParam(name, tuple(choices))

    scale = raw.get("scale", "linear")
    scales = ("linear", "log", "reverse_log") if kind == "float" else ("linear", "log")
    if scale not in scales:
        raise SpaceError(
            f"{path}.scale", f"must be one of {', '.join(scales)} for a {kind} parameter"
        )

    if kind == "int":
        low, high = _integer(raw, "low", path), _integer(raw, "high", path)
        step = _integer(raw, "step", path) if raw.get("step") is not None else 1
    else:
        low, high = _number(raw, "low", path), _number(raw, "high", path)  # type: ignore[assignment]
        step = _number(raw, "step", path) if raw.get("step") is not None else None  # type: ignore[assignment]

    if low > high:
        raise SpaceError(f"{path}.low", f"low ({low}) must not be greater than high ({high})")
    if not math.isfinite(high - low):
        # Sampling maps the unit interval onto high - low; an infinite width maps all of it
        # to one end.
        raise SpaceError(f"{path}.high", "the range high - low must be a finite number")
    if scale == "log" and low <= 0:
        raise SpaceError(f"{path}.low", f"a log scale needs low > 0, got {low}")
    if scale == "reverse_log" and not (low >= 0 and high < 1):
        field_name = "low" if low < 0 else "high"
        raise SpaceError(f"{path}.{field_name}", "a reverse_log scale needs 0 <= low <= high < 1")
    if step is not None:
        if step <= 0:
            raise SpaceError(f"{path}.step", f"must be positive, got {step}")
        if step > high - low and high > low:
            raise SpaceError(f"{path}.step", f"step {step} is larger than the range {high - low}")
        if not math.isfinite((high - low) / step):
            raise SpaceError(f"{path}.step", f"step {step} is too small for the range")
        if scale != "linear" and kind == "float":
            raise SpaceError(f"{path}.step", "a step works only with a linear scale")

    if kind == "int":
        return IntParam(name, int(low), int(high), scale, int(step or 1))
    return FloatParam(name, float(low), float(high), scale, step)


def parse_space(raw: Any, path: str = "space") -> SearchSpace:
    if not isinstance(raw, Mapping) or not raw:
        raise SpaceError(path, "must be a non-empty object of parameters")
    if len(raw) > MAX_PARAMETERS:
        raise SpaceError(path, f"has {len(raw)} parameters; at most {MAX_PARAMETERS}")
    params: list[Param] = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
            raise SpaceError(
                f"{path}.{name}", f"a parameter name has 1 to {MAX_NAME_LENGTH} characters"
            )
        if not all(ch.isalnum() or ch in "_-." for ch in name):
            raise SpaceError(
                f"{path}.{name}", "a parameter name uses letters, digits, '_', '-' and '.'"
            )
        params.append(parse_param(name, spec, f"{path}.{name}"))
    _check_conditions(params, path)
    return SearchSpace(tuple(params))


def param_roles(raw: Mapping[str, Any]) -> dict[str, str]:
    """The optional `role` of each parameter (learning_rate, per_device_batch_size, ...)."""
    return {
        name: spec["role"]
        for name, spec in raw.items()
        if isinstance(spec, Mapping) and spec.get("role")
    }


# --- Conditions -------------------------------------------------------------------------

# States of the condition tree walked to prove that every condition can hold; beyond it
# (dozens of interlocking multi-parent conditions) the check is skipped rather than
# slowing every parse (about 0.2 s at the cap).
_MAX_CONDITION_STATES = 2_000
# Branch sizes the conditional grid memoizes; a space whose conditions interlock more
# than this (each parent read far from its children) is refused for a grid.
MAX_GRID_STATES = 20_000


def _dependency_order(params: Sequence[Param]) -> tuple[Param, ...]:
    """Parents before their children; otherwise the declaration order, so that a space
    without conditions keeps its order (the grid's point numbering depends on it)."""
    if not any(p.condition is not None for p in params):
        return tuple(params)
    position = {p.name: k for k, p in enumerate(params)}
    waiting = {
        p.name: {parent for parent in p.condition.parents if parent in position}
        if p.condition is not None
        else set()
        for p in params
    }
    ordered: list[Param] = []
    placed: set[str] = set()
    while len(ordered) < len(params):
        ready = [p for p in params if p.name not in placed and waiting[p.name] <= placed]
        if not ready:
            # A cycle (parse_space refuses them; a space built by hand may not): the rest
            # in declaration order.
            ordered.extend(p for p in params if p.name not in placed)
            break
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return tuple(ordered)


def _parse_condition(raw: Any, path: str) -> Condition:
    if not isinstance(raw, Mapping) or not raw:
        raise SpaceError(path, "must be an object of parent parameter -> list of allowed values")
    clauses: list[tuple[str, tuple[ParamValue, ...]]] = []
    for parent, allowed in raw.items():
        if not isinstance(parent, str) or not parent:
            raise SpaceError(path, "a condition names its parent parameters")
        if not isinstance(allowed, list) or not allowed:
            raise SpaceError(f"{path}.{parent}", "must be a non-empty list of allowed values")
        values: list[ParamValue] = []
        for position, value in enumerate(allowed):
            if not _is_scalar(value):
                raise SpaceError(
                    f"{path}.{parent}.{position}", "must be a string, number or boolean"
                )
            if not any(same_value(value, seen) for seen in values):
                values.append(value)
        clauses.append((parent, tuple(values)))
    return Condition(tuple(clauses))


def _allowed_value(parent: Param, value: ParamValue, path: str) -> ParamValue:
    """A condition's value as the parent's own value, or SpaceError when the parent can
    never take it."""
    if isinstance(parent, CategoricalParam):
        for choice in parent.choices:
            if same_value(value, choice):
                return choice
        raise SpaceError(
            path, f"{value!r} is impossible: {parent.name} is one of {list(parent.choices)!r}"
        )
    if isinstance(parent, FixedParam):
        if not same_value(value, parent.value):
            raise SpaceError(
                path, f"{value!r} is impossible: {parent.name} is fixed at {parent.value!r}"
            )
        return parent.value
    try:
        return parent.validate(value, path)
    except SpaceError as error:
        raise SpaceError(path, f"{value!r} is impossible: {error.detail}") from None


def _check_conditions(params: Sequence[Param], path: str) -> None:
    """Every parent exists, is discrete and can take each allowed value; no cycles; every
    condition can hold. Conditions come back with the parents' own values (an int
    parent's 3.0 becomes 3)."""
    by_name = {p.name: p for p in params}
    for index, param in enumerate(params):
        if param.condition is None:
            continue
        clauses: list[tuple[str, tuple[ParamValue, ...]]] = []
        for parent_name, allowed in param.condition.clauses:
            clause_path = f"{path}.{param.name}.condition.{parent_name}"
            if parent_name == param.name:
                raise SpaceError(clause_path, "a parameter cannot be conditional on itself")
            parent = by_name.get(parent_name)
            if parent is None:
                raise SpaceError(clause_path, f"{parent_name!r} is not a parameter of the space")
            if isinstance(parent, FloatParam):
                raise SpaceError(
                    clause_path,
                    f"{parent_name} is a float; a condition's parent is categorical, int or fixed",
                )
            values = tuple(
                _allowed_value(parent, value, f"{clause_path}.{position}")
                for position, value in enumerate(allowed)
            )
            clauses.append((parent_name, values))
        params[index] = replace(param, condition=Condition(tuple(clauses)))  # type: ignore[index]
    _check_cycles(params, path)
    _check_reachable(params, path)


def _check_cycles(params: Sequence[Param], path: str) -> None:
    parents = {p.name: p.condition.parents if p.condition is not None else () for p in params}
    done: set[str] = set()
    for start in parents:
        # Depth-first walk up the parents with an explicit stack; the trail names the cycle.
        trail: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            name, next_parent = stack.pop()
            if next_parent == 0:
                if name in done:
                    continue
                if name in trail:
                    cycle = [*trail[trail.index(name) :], name]
                    raise SpaceError(
                        f"{path}.{cycle[0]}.condition",
                        f"conditions form a cycle: {' -> '.join(cycle)}",
                    )
                trail.append(name)
            if next_parent < len(parents[name]):
                stack.append((name, next_parent + 1))
                stack.append((parents[name][next_parent], 0))
            else:
                trail.pop()
                done.add(name)


def _check_reachable(params: Sequence[Param], path: str) -> None:
    """Refuse a condition that no config satisfies (b only when a is x, c only when a is
    y and b is set): such a parameter would silently never be tuned.

    With one parent per condition every condition can hold (each allowed value is one the
    parent takes, and the parent is reachable by induction). Otherwise the condition tree
    is walked over the parent values the conditions name (any other value only turns
    children off, and a condition never asks for a parameter to be off), pruned like the
    grid's count: two paths that agree on the parents still to be read reach the same
    parameters from there."""
    if all(p.condition is None or len(p.condition.clauses) == 1 for p in params):
        return
    space = SearchSpace(tuple(params))
    order = _grid_order(space)
    controlling = {
        parent for p in params if p.condition is not None for parent in p.condition.parents
    }
    mentioned: dict[str, list[ParamValue]] = {name: [] for name in controlling}
    for p in params:
        if p.condition is not None:
            for parent, allowed in p.condition.clauses:
                for value in allowed:
                    if not any(same_value(value, seen) for seen in mentioned[parent]):
                        mentioned[parent].append(value)
    representatives = {
        name: [space[name].value] if isinstance(space[name], FixedParam) else mentioned[name]  # type: ignore[union-attr]
        for name in controlling
    }
    needed = [
        frozenset(
            parent
            for p in order[position:]
            if p.condition is not None
            for parent in p.condition.parents
        )
        for position in range(len(order) + 1)
    ]
    reachable: set[str] = set()
    visited: set[tuple[Any, ...]] = set()
    stack: list[tuple[int, dict[str, Any]]] = [(0, {})]
    while stack:
        position, assigned = stack.pop()
        if position == len(order):
            continue
        key = (
            position,
            *((n, type(v).__name__, repr(v)) for n, v in sorted(assigned.items())),
        )
        if key in visited:
            continue
        if len(visited) > _MAX_CONDITION_STATES:
            return  # too many independent parents to prove it; the grid still works
        visited.add(key)
        param = order[position]
        ahead = needed[position + 1]
        kept = {n: v for n, v in assigned.items() if n in ahead}
        if param.condition is not None and not param.condition.holds(assigned):
            stack.append((position + 1, kept))
            continue
        reachable.add(param.name)
        if param.name in ahead:
            stack.extend(
                (position + 1, {**kept, param.name: value}) for value in representatives[param.name]
            )
        else:
            stack.append((position + 1, kept))
    for param in params:
        if param.name not in reachable and param.condition is not None:
            raise SpaceError(
                f"{path}.{param.name}.condition",
                f"can never hold: no config has {param.condition.describe()} with "
                "every parent active",
            )


class ConditionalGrid:
    """The grid of a (possibly conditional) space as numbered points, never enumerated.

    Parameters are taken in dependency order; an inactive parameter contributes no digit,
    so no two grid points differ only in a value the run would never see. Point k is
    decoded as a mixed-radix number whose radix below a parent depends on the parent's
    value (the size of that branch of the condition tree); branch sizes are memoized by
    the values of the parents still to be read, so a space without conditions numbers
    its points exactly as `itertools.product` over the parameters in declaration order.
    """

    def __init__(self, space: SearchSpace, points: int) -> None:
        self.space = space
        self.order = _grid_order(space)
        self.controlling = {
            parent
            for p in space.params
            if p.condition is not None
            for parent in p.condition.parents
        }
        self.axes: dict[str, list[ParamValue]] = {}
        for param in self.order:
            axis = list(param.grid(points))
            if param.name in self.controlling and isinstance(param, IntParam):
                # An int parent's grid must include the values its children wait for.
                wanted = [
                    value
                    for child in space.params
                    if child.condition is not None
                    for parent, allowed in child.condition.clauses
                    if parent == param.name
                    for value in allowed
                ]
                axis = sorted(set(axis) | {int(v) for v in wanted})
            self.axes[param.name] = axis
        # needed[i]: parents read by parameters at positions >= i (the memo key).
        self.needed: list[frozenset[str]] = []
        for position in range(len(self.order) + 1):
            self.needed.append(
                frozenset(
                    parent
                    for p in self.order[position:]
                    if p.condition is not None
                    for parent in p.condition.parents
                )
            )
        self._memo: dict[tuple[Any, ...], int] = {}
        self.size = self._count(0, {})

    def _key(self, position: int, state: Mapping[str, ParamValue]) -> tuple[Any, ...]:
        return (
            position,
            *(
                (name, type(state[name]).__name__, state[name])
                for name in sorted(self.needed[position])
                if name in state
            ),
        )

    def _count(self, position: int, state: dict[str, ParamValue]) -> int:
        if position == len(self.order):
            return 1
        key = self._key(position, state)
        if key in self._memo:
            return self._memo[key]
        if len(self._memo) >= MAX_GRID_STATES:
            raise SpaceError(
                "space",
                "its conditions interlock too much to number a grid "
                f"(over {MAX_GRID_STATES} branch states); use another sampler",
            )
        param = self.order[position]
        if param.condition is not None and not param.condition.holds(state):
            total = self._count(position + 1, state)
        elif param.name in self.controlling:
            total = sum(
                self._count(position + 1, {**state, param.name: value})
                for value in self.axes[param.name]
            )
        else:
            total = len(self.axes[param.name]) * self._count(position + 1, state)
        self._memo[key] = total
        return total

    def point(self, index: int) -> dict[str, ParamValue]:
        """Grid point `index` (0 <= index < size): only active parameters."""
        state: dict[str, ParamValue] = {}
        config: dict[str, ParamValue] = {}
        for position, param in enumerate(self.order):
            if param.condition is not None and not param.condition.holds(state):
                continue
            axis = self.axes[param.name]
            if param.name in self.controlling:
                for value in axis:
                    branch = self._count(position + 1, {**state, param.name: value})
                    if index < branch:
                        break
                    index -= branch
                state[param.name] = value
                config[param.name] = value
            else:
                digit, index = divmod(index, self._count(position + 1, state))
                config[param.name] = axis[digit]
        return {p.name: config[p.name] for p in self.space.params if p.name in config}

    def index_of(self, params: Mapping[str, Any]) -> int | None:
        """The grid point a config is, or None when it is not on the grid."""
        state: dict[str, ParamValue] = {}
        index = 0
        for position, param in enumerate(self.order):
            if param.condition is not None and not param.condition.holds(state):
                if param.name in params and not isinstance(param, FixedParam):
                    return None
                continue
            if param.name not in params:
                return None
            axis = self.axes[param.name]
            digit = _position_in(axis, params[param.name])
            if digit is None:
                return None
            if param.name in self.controlling:
                index += sum(
                    self._count(position + 1, {**state, param.name: value})
                    for value in axis[:digit]
                )
                state[param.name] = axis[digit]
            else:
                index += digit * self._count(position + 1, state)
        return index


def _grid_order(space: SearchSpace) -> tuple[Param, ...]:
    """Parents before children, and each child right after its last parent: the grid's
    branch sizes are memoized by the parents still to be read, so placing children early
    keeps that set (and the memo) small when many parents are declared first. Without
    conditions this is the declaration order."""
    if not space.conditional:
        return space.params
    placed: list[Param] = []
    names: set[str] = set()

    def ready(param: Param) -> bool:
        parents = param.condition.parents if param.condition is not None else ()
        return param.name not in names and all(p in names or p not in space for p in parents)

    def place(param: Param) -> None:
        placed.append(param)
        names.add(param.name)
        for child in space.params:
            if (
                child.condition is not None
                and param.name in child.condition.parents
                and ready(child)
            ):
                place(child)

    for param in space.order:
        if param.name not in names:
            place(param)
    return tuple(placed)


def _position_in(axis: Sequence[ParamValue], value: Any) -> int | None:
    # The same type first: a categorical may offer 1, 1.0 and True, which Python finds equal.
    for digit, candidate in enumerate(axis):
        if type(candidate) is type(value) and candidate == value:
            return digit
    for digit, candidate in enumerate(axis):
        if same_value(candidate, value):
            return digit
    return None
