"""Scaling rules: how a config tuned at one world size changes at another.

Pure arithmetic: no database, no HTTP. Every number the rules produce comes with the
step that produced it, so that a person can check the result by hand.

With `W` the world size (nodes x GPUs per node), `b` the per-device batch and `G` the
global batch (`b * W * gradient accumulation`), a move from `W` to `W'` with per-device
batch `b'` multiplies the global batch by `r = (b' / b) * (W' / W)`. Then

- linear (Goyal et al. 2017): learning rate x r; warm-up kept in samples;
- sqrt (Hoffer et al. 2017; Malladi et al. 2022 for Adam-type optimizers):
  learning rate x sqrt(r); warm-up kept in samples;
- none: learning rate and warm-up unchanged.

The per-device batch stays as it is unless a new one is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.engine.errors import ConfigError
from app.scaling.roles import (
    GLOBAL_BATCH,
    LEARNING_RATE,
    PER_DEVICE_BATCH,
    WARMUP_STEPS,
    RoleAssignment,
)

Rule = Literal["linear", "sqrt", "none"]
WarmupMode = Literal["same_samples", "same_steps"]
RULES: tuple[str, ...] = ("linear", "sqrt", "none")


@dataclass(frozen=True)
class World:
    nodes: int
    gpus_per_node: int

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ConfigError("world", "nodes and gpus_per_node must be at least 1")

    @property
    def size(self) -> int:
        return self.nodes * self.gpus_per_node

    def describe(self) -> str:
        return f"{self.nodes} x {self.gpus_per_node} = {self.size}"


@dataclass(frozen=True)
class Step:
    """One line of arithmetic: what was computed, how, and the result."""

    what: str
    formula: str
    value: float | int | None = None
    param: str | None = None
    role: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "formula": self.formula,
            "value": self.value,
            "param": self.param,
            "role": self.role,
        }


@dataclass(frozen=True)
class Change:
    param: str
    role: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"param": self.param, "role": self.role, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ScaleResult:
    rule: Rule
    source: World
    target: World
    world_factor: float
    batch_factor: float
    lr_factor: float
    warmup_factor: float
    params: dict[str, Any]
    changes: list[Change]
    steps: list[Step]
    notes: list[str] = field(default_factory=list)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _number(config: Mapping[str, Any], name: str, role: str) -> float:
    value = config.get(name)
    try:
        number = (
            float(value)
            if not isinstance(value, bool) and isinstance(value, int | float)
            else math.nan
        )
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"params.{name}", f"the {role} must be a finite number, got {value!r}")
    if role in (PER_DEVICE_BATCH, GLOBAL_BATCH) and number <= 0:
        raise ConfigError(f"params.{name}", f"the {role} must be positive, got {value!r}")
    return number


def _finite(value: float, name: str, role: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"params.{name}", f"the scaled {role} is not a finite number")
    return value


def _as_int(value: float) -> int:
    return max(1, round(value))


def _kind_of(value: Any) -> type:
    return int if isinstance(value, int) and not isinstance(value, bool) else float


def lr_factor_for(rule: Rule, batch_factor: float) -> float:
    if rule == "linear":
        return batch_factor
    if rule == "sqrt":
        return math.sqrt(batch_factor)
    return 1.0


def warmup_factor_for(rule: Rule, batch_factor: float, warmup: WarmupMode) -> float:
    # Warm-up is a stretch of training, counted in samples by Goyal et al.; with r times
    # more samples per step the same stretch takes r times fewer steps.
    return 1.0 if rule == "none" or warmup == "same_steps" else 1.0 / batch_factor


@dataclass
class _Scaling:
    """What the steps of `scale_config` share: the config, its params as scaled so far,
    and the record of the arithmetic."""

    config: Mapping[str, Any]
    roles: RoleAssignment
    params: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set(self, name: str, role: str, after: Any) -> None:
        self.params[name] = after
        self.changes.append(Change(name, role, self.config[name], after))


def scale_config(
    config: Mapping[str, Any],
    roles: RoleAssignment,
    source: World,
    target: World,
    rule: Rule,
    per_device_batch: int | None = None,
    warmup: WarmupMode = "same_samples",
) -> ScaleResult:
    """Scales the config's role parameters from `source` to `target` world size, one
    step per role: the per-device batch, the global batch, the learning rate, warm-up."""
    if rule not in RULES:
        raise ConfigError("rule", f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    work = _Scaling(config, roles, dict(config), notes=list(roles.notes))
    world_factor = _world_factor(work, source, target)
    batch_ratio = _per_device_batch(work, per_device_batch)
    batch_factor = _global_batch_factor(work, world_factor, batch_ratio)
    _global_batch(work, source, target, batch_factor)
    lr_factor = _learning_rate(work, rule, batch_factor)
    warmup_factor = _warmup(work, rule, warmup, batch_factor)
    return ScaleResult(
        rule=rule,
        source=source,
        target=target,
        world_factor=world_factor,
        batch_factor=batch_factor,
        lr_factor=lr_factor,
        warmup_factor=warmup_factor,
        params=work.params,
        changes=[c for c in work.changes if c.before != c.after],
        steps=work.steps,
        notes=work.notes,
    )


def _world_factor(work: _Scaling, source: World, target: World) -> float:
    k = target.size / source.size
    work.steps.append(
        Step(
            "world size",
            f"{source.describe()} -> {target.describe()}; factor {target.size} / {source.size} "
            f"= {_fmt(k)}",
            k,
        )
    )
    return k


def _per_device_batch(work: _Scaling, per_device_batch: int | None) -> float:
    """Keeps the per-device batch, or sets the one asked for; returns new / old."""
    name = work.roles.param_for(PER_DEVICE_BATCH)
    if per_device_batch is not None:
        if per_device_batch < 1:
            raise ConfigError("per_device_batch", "must be at least 1")
        if name is None:
            raise ConfigError(
                "per_device_batch",
                "no parameter has the role per_device_batch_size, so there is nothing to set",
            )
    if name is None:
        if work.roles.param_for(GLOBAL_BATCH) is None:
            work.notes.append(
                "no batch parameter has a role: the per-device batch is taken as unchanged"
            )
        return 1.0
    config = work.config
    before = _number(config, name, PER_DEVICE_BATCH)
    if per_device_batch is None:
        work.steps.append(
            Step(
                "per-device batch", f"kept at {_fmt(before)}", config[name], name, PER_DEVICE_BATCH
            )
        )
        return float(config[name]) / before
    ratio = float(per_device_batch) / before
    work.steps.append(
        Step(
            "per-device batch",
            f"set to {per_device_batch} (was {_fmt(before)}); ratio "
            f"{per_device_batch} / {_fmt(before)} = {_fmt(ratio)}",
            per_device_batch,
            name,
            PER_DEVICE_BATCH,
        )
    )
    work.params[name] = per_device_batch
    if per_device_batch != config[name]:
        work.changes.append(Change(name, PER_DEVICE_BATCH, config[name], per_device_batch))
    return ratio


def _global_batch_factor(work: _Scaling, world_factor: float, batch_ratio: float) -> float:
    """r: how many times larger the global batch gets."""
    r = world_factor * batch_ratio
    if batch_ratio == 1.0:
        formula = f"per-device batch unchanged, so the world factor: {_fmt(r)}"
    else:
        formula = f"{_fmt(batch_ratio)} x {_fmt(world_factor)} = {_fmt(r)}"
    work.steps.append(Step("global batch factor", formula, r))
    return r


def _global_batch(work: _Scaling, source: World, target: World, r: float) -> None:
    """The global batch the per-device batch gives, and a global batch parameter x r."""
    config = work.config
    per_device_name = work.roles.param_for(PER_DEVICE_BATCH)
    if per_device_name is not None:
        before_b = float(config[per_device_name])
        b = work.params[per_device_name]
        work.steps.append(
            Step(
                "global batch",
                f"{_fmt(before_b)} x {source.size} = {_fmt(before_b * source.size)} -> "
                f"{b} x {target.size} = {_fmt(float(b) * target.size)} "
                "(times any gradient accumulation)",
                float(b) * target.size,
            )
        )
    name = work.roles.param_for(GLOBAL_BATCH)
    if name is None:
        return
    before = _number(config, name, GLOBAL_BATCH)
    after: float | int = _finite(before * r, name, GLOBAL_BATCH)
    if _kind_of(config[name]) is int:
        after = _as_int(after)
        if abs(after - before * r) > 1e-9:
            work.notes.append(f"{name} rounded to {after}")
    work.steps.append(
        Step(
            "global batch",
            f"{_fmt(before)} x {_fmt(r)} = {_fmt(float(after))}",
            after,
            name,
            GLOBAL_BATCH,
        )
    )
    work.set(name, GLOBAL_BATCH, after)


def _learning_rate(work: _Scaling, rule: Rule, r: float) -> float:
    """The learning rate x the rule's factor of r; returns the factor."""
    factor = lr_factor_for(rule, r)
    name = work.roles.param_for(LEARNING_RATE)
    if name is None:
        work.notes.append("no parameter has the role learning_rate: nothing to scale by the rule")
        return factor
    if rule == "linear":
        how = f"linear rule: x r = x {_fmt(r)}"
    elif rule == "sqrt":
        how = f"square-root rule: x sqrt(r) = x sqrt({_fmt(r)}) = x {_fmt(factor)}"
    else:
        how = "rule none: unchanged"
    before = _number(work.config, name, LEARNING_RATE)
    after = _finite(before * factor, name, LEARNING_RATE)
    work.steps.append(
        Step(
            "learning rate",
            f"{how}: {_fmt(before)} x {_fmt(factor)} = {_fmt(after)}",
            after,
            name,
            LEARNING_RATE,
        )
    )
    work.set(name, LEARNING_RATE, after)
    return factor


def _warmup(work: _Scaling, rule: Rule, warmup: WarmupMode, r: float) -> float:
    """Warm-up steps, kept in samples (/ r) or in steps; returns the factor."""
    factor = warmup_factor_for(rule, r, warmup)
    name = work.roles.param_for(WARMUP_STEPS)
    if name is None:
        return factor
    before = _number(work.config, name, WARMUP_STEPS)
    after: float | int = _finite(before * factor, name, WARMUP_STEPS)
    if _kind_of(work.config[name]) is int:
        after = max(0, round(after))
    if rule == "none":
        how = "rule none: unchanged"
    elif warmup == "same_steps":
        how = "kept in steps (asked for)"
    else:
        how = f"kept in samples: / r = / {_fmt(r)}"
    work.steps.append(
        Step(
            "warm-up steps",
            f"{how}: {_fmt(before)} -> {_fmt(float(after))}",
            after,
            name,
            WARMUP_STEPS,
        )
    )
    work.set(name, WARMUP_STEPS, after)
    return factor


def scale_value(
    role: str, value: float, rule: Rule, batch_factor: float, warmup: WarmupMode = "same_samples"
) -> float:
    """One value of a role under a global-batch factor (used to move a space's bounds)."""
    if role == LEARNING_RATE:
        return value * lr_factor_for(rule, batch_factor)
    if role == GLOBAL_BATCH:
        return value * batch_factor
    if role == WARMUP_STEPS:
        return value if rule == "none" or warmup == "same_steps" else value / batch_factor
    return value
