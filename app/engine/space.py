"""Search spaces: parameter definitions, validation, sampling transforms and grids.

Every numeric parameter maps to the unit interval through its scale, so that samplers
(random, Sobol, Gaussian processes) work in one coordinate system and the space alone
knows about logs, steps and integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.engine.errors import ConfigError
from app.engine.options import DEFAULT_GRID_POINTS

Scale = Literal["linear", "log", "reverse_log"]
ParamValue = float | int | str | bool

MAX_PARAMETERS = 64
MAX_CHOICES = 1000
MAX_NAME_LENGTH = 64


class SpaceError(ConfigError):
    """A search space, or a config that does not fit it."""


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    scale: Scale = "linear"
    step: float | None = None
    type: Literal["float"] = "float"

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})

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
        """A config from a point of the unit cube over `searchable` (fixed values added)."""
        config: dict[str, ParamValue] = {}
        coords = iter(point)
        for param in self.params:
            if isinstance(param, FixedParam):
                config[param.name] = param.value
            else:
                config[param.name] = param.from_unit(next(coords))
        return config

    def to_unit(self, config: Mapping[str, Any]) -> list[float]:
        return [p.to_unit(config[p.name]) for p in self.searchable]

    def validate(self, config: Mapping[str, Any], path: str = "params") -> dict[str, ParamValue]:
        """A complete config checked against the space; fixed values may be omitted."""
        unknown = [name for name in config if name not in self._by_name]
        if unknown:
            raise SpaceError(f"{path}.{unknown[0]}", "is not a parameter of the search space")
        checked: dict[str, ParamValue] = {}
        for param in self.params:
            if param.name not in config:
                if isinstance(param, FixedParam):
                    checked[param.name] = param.value
                    continue
                raise SpaceError(f"{path}.{param.name}", "is missing")
            checked[param.name] = param.validate(config[param.name], f"{path}.{param.name}")
        return checked

    def grid_size(self, points: int = DEFAULT_GRID_POINTS) -> int:
        size = 1
        for param in self.params:
            size *= len(param.grid(points))
        return size

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {p.name: param_to_dict(p) for p in self.params}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], path: str = "space") -> SearchSpace:
        return parse_space(raw, path)


def param_to_dict(param: Param) -> dict[str, Any]:
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
    "float": {"type", "low", "high", "scale", "step", "role"},
    "int": {"type", "low", "high", "scale", "step", "role"},
    "categorical": {"type", "choices", "role"},
    "fixed": {"type", "value", "role"},
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
    return SearchSpace(tuple(params))


def param_roles(raw: Mapping[str, Any]) -> dict[str, str]:
    """The optional `role` of each parameter (learning_rate, per_device_batch_size, ...)."""
    return {
        name: spec["role"]
        for name, spec in raw.items()
        if isinstance(spec, Mapping) and spec.get("role")
    }
