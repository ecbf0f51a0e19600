"""A search space moved to a larger (or smaller) world: the bounds of role parameters
follow the rule, and the space still holds every config that was scaled into it."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from app.scaling.roles import PER_DEVICE_BATCH, RoleAssignment
from app.scaling.rules import Rule, WarmupMode, scale_value


def _bounds(spec: dict[str, Any], role: str, rule: Rule, factor: float, warmup: WarmupMode) -> None:
    low = scale_value(role, float(spec["low"]), rule, factor, warmup)
    high = scale_value(role, float(spec["high"]), rule, factor, warmup)
    low, high = min(low, high), max(low, high)
    if spec["type"] == "int":
        spec["low"], spec["high"] = max(0, int(low)), max(1, round(high + 0.4999))
    else:
        spec["low"], spec["high"] = low, high
    # A scaled grid rarely lines up with the scaled values; the range is what matters.
    spec.pop("step", None)


def _cover(spec: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """Widens a spec so that it accepts every value in `values`."""
    if not values:
        return spec
    kind = spec["type"]
    if kind == "fixed":
        distinct = list(dict.fromkeys(values))
        if distinct == [spec["value"]]:
            return spec
        if len(distinct) == 1:
            return {**spec, "value": distinct[0]}
        return {
            "type": "categorical",
            "choices": distinct,
            **({"role": spec["role"]} if "role" in spec else {}),
        }
    if kind == "categorical":
        choices = list(spec["choices"])
        for value in values:
            if value not in choices:
                choices.append(value)
        return {**spec, "choices": choices}
    numbers = [float(v) for v in values]
    low, high = min([float(spec["low"]), *numbers]), max([float(spec["high"]), *numbers])
    widened = {**spec}
    if low < float(spec["low"]) or high > float(spec["high"]):
        widened.pop("step", None)
    if kind == "int":
        widened["low"], widened["high"] = int(low), int(high)
        if any(not float(v).is_integer() for v in values):
            widened = {**widened, "type": "float", "low": low, "high": high}
    else:
        widened["low"], widened["high"] = low, high
    if "step" in widened:
        step = float(widened["step"])
        if any(
            abs(
                (float(v) - float(widened["low"])) / step
                - round((float(v) - float(widened["low"])) / step)
            )
            > 1e-6
            for v in values
        ):
            widened.pop("step")
    return widened


def scaled_space(
    raw_space: Mapping[str, Any],
    roles: RoleAssignment,
    rule: Rule,
    world_factor: float,
    configs: Iterable[Mapping[str, Any]],
    fixed: Mapping[str, Any] | None = None,
    warmup: WarmupMode = "same_samples",
) -> dict[str, Any]:
    """The space of a study at the new scale.

    Role parameters move by the world factor (per-device batch unchanged); parameters in
    `fixed` become fixed values; then every spec widens to hold the scaled `configs`."""
    space = copy.deepcopy(dict(raw_space))
    for name, spec in space.items():
        role = roles.roles.get(name)
        if role is None or role == PER_DEVICE_BATCH:
            continue
        if spec["type"] in ("float", "int"):
            _bounds(spec, role, rule, world_factor, warmup)
        elif spec["type"] == "categorical":
            spec["choices"] = list(
                dict.fromkeys(
                    _same_kind(c, scale_value(role, float(c), rule, world_factor, warmup))
                    if isinstance(c, int | float) and not isinstance(c, bool)
                    else c
                    for c in spec["choices"]
                )
            )
        elif isinstance(spec.get("value"), int | float) and not isinstance(spec.get("value"), bool):
            spec["value"] = _same_kind(
                spec["value"], scale_value(role, float(spec["value"]), rule, world_factor, warmup)
            )
    for name, value in (fixed or {}).items():
        role = space.get(name, {}).get("role")
        space[name] = {"type": "fixed", "value": value, **({"role": role} if role else {})}
    listed = list(configs)
    for name in list(space):
        values = [c[name] for c in listed if name in c]
        space[name] = _cover(space[name], values)
    return space


def _same_kind(original: Any, value: float) -> Any:
    if isinstance(original, int) and not isinstance(original, bool):
        return max(0, round(value))
    return value
