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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.engine.errors import ConfigError

Rule = Literal["linear", "sqrt", "none"]
WarmupMode = Literal["same_samples", "same_steps"]
RULES: tuple[str, ...] = ("linear", "sqrt", "none")

LEARNING_RATE = "learning_rate"
PER_DEVICE_BATCH = "per_device_batch_size"
GLOBAL_BATCH = "global_batch_size"
WARMUP_STEPS = "warmup_steps"
ROLES: tuple[str, ...] = (LEARNING_RATE, PER_DEVICE_BATCH, GLOBAL_BATCH, WARMUP_STEPS)

# Names that, in a space that declares no roles at all, stand for a role. `batch_size`
# alone is read as per device: that is what a data-parallel training script passes to
# its data loader on every rank.
_NAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (LEARNING_RATE, re.compile(r"^(lr|learning_rate|learning-rate|base_lr|max_lr|peak_lr)$", re.I)),
    (GLOBAL_BATCH, re.compile(r"^(global|total|effective)[_-]?(train[_-]?)?batch[_-]?size$", re.I)),
    (
        PER_DEVICE_BATCH,
        re.compile(
            r"^((per[_-]?device|per[_-]?gpu|micro)[_-]?)?(train[_-]?)?batch[_-]?size$", re.I
        ),
    ),
    (WARMUP_STEPS, re.compile(r"^(num[_-]?)?warm[_-]?up([_-]?steps)?$", re.I)),
)


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
class RoleAssignment:
    """Which parameter plays which role, and whether that was declared or guessed."""

    roles: dict[str, str]  # parameter name -> role
    inferred: bool
    notes: tuple[str, ...] = ()

    def param_for(self, role: str) -> str | None:
        return next((name for name, r in self.roles.items() if r == role), None)


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


def assign_roles(roles: Mapping[str, str], names: list[str]) -> RoleAssignment:
    """Declared roles win. Only a space that declares none gets roles from its names."""
    unknown = {name: role for name, role in roles.items() if role not in ROLES}
    if unknown:
        name, role = next(iter(unknown.items()))
        raise ConfigError(
            f"space.{name}.role", f"unknown role {role!r}; use one of {', '.join(ROLES)}"
        )
    for role in ROLES:
        holders = [name for name, r in roles.items() if r == role]
        if len(holders) > 1:
            raise ConfigError(
                f"space.{holders[1]}.role", f"role {role!r} is already held by {holders[0]!r}"
            )
    if roles:
        return RoleAssignment(dict(roles), inferred=False)
    guessed: dict[str, str] = {}
    notes: list[str] = []
    for name in names:
        for role, pattern in _NAME_PATTERNS:
            if pattern.match(name) and role not in guessed.values():
                guessed[name] = role
                notes.append(
                    f"no parameter declares a role: {name!r} taken as {role} from its name; "
                    f'set "role" in the search space to make this explicit'
                )
                break
    return RoleAssignment(guessed, inferred=True, notes=tuple(notes))


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


@dataclass(frozen=True)
class Factors:
    world: float
    batch: float
    lr: float
    warmup: float


def lr_factor_for(rule: Rule, batch_factor: float) -> float:
    if rule == "linear":
        return batch_factor
    if rule == "sqrt":
        return math.sqrt(batch_factor)
    return 1.0


def scale_config(
    config: Mapping[str, Any],
    roles: RoleAssignment,
    source: World,
    target: World,
    rule: Rule,
    per_device_batch: int | None = None,
    warmup: WarmupMode = "same_samples",
) -> ScaleResult:
    """Scales the config's role parameters from `source` to `target` world size."""
    if rule not in RULES:
        raise ConfigError("rule", f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    params = dict(config)
    steps: list[Step] = []
    changes: list[Change] = []
    notes = list(roles.notes)
    k = target.size / source.size
    steps.append(
        Step(
            "world size",
            f"{source.describe()} -> {target.describe()}; factor {target.size} / {source.size} "
            f"= {_fmt(k)}",
            k,
        )
    )

    per_device_name = roles.param_for(PER_DEVICE_BATCH)
    global_name = roles.param_for(GLOBAL_BATCH)
    lr_name = roles.param_for(LEARNING_RATE)
    warmup_name = roles.param_for(WARMUP_STEPS)

    # The global batch grows with the world and with the per-device batch.
    batch_ratio = 1.0
    if per_device_batch is not None:
        if per_device_batch < 1:
            raise ConfigError("per_device_batch", "must be at least 1")
        if per_device_name is None:
            raise ConfigError(
                "per_device_batch",
                "no parameter has the role per_device_batch_size, so there is nothing to set",
            )
    if per_device_name is not None:
        before = _number(config, per_device_name, PER_DEVICE_BATCH)
        after = per_device_batch if per_device_batch is not None else config[per_device_name]
        batch_ratio = float(after) / before
        if per_device_batch is None:
            steps.append(
                Step(
                    "per-device batch",
                    f"kept at {_fmt(before)}",
                    config[per_device_name],
                    per_device_name,
                    PER_DEVICE_BATCH,
                )
            )
        else:
            steps.append(
                Step(
                    "per-device batch",
                    f"set to {after} (was {_fmt(before)}); ratio "
                    f"{after} / {_fmt(before)} = {_fmt(batch_ratio)}",
                    after,
                    per_device_name,
                    PER_DEVICE_BATCH,
                )
            )
            params[per_device_name] = after
            if after != config[per_device_name]:
                changes.append(
                    Change(per_device_name, PER_DEVICE_BATCH, config[per_device_name], after)
                )
    elif global_name is None:
        notes.append("no batch parameter has a role: the per-device batch is taken as unchanged")
    r = k * batch_ratio
    if batch_ratio == 1.0:
        steps.append(
            Step(
                "global batch factor",
                f"per-device batch unchanged, so the world factor: {_fmt(r)}",
                r,
            )
        )
    else:
        steps.append(Step("global batch factor", f"{_fmt(batch_ratio)} x {_fmt(k)} = {_fmt(r)}", r))

    if per_device_name is not None:
        b = params[per_device_name]
        steps.append(
            Step(
                "global batch",
                f"{_fmt(float(config[per_device_name]))} x {source.size} = "
                f"{_fmt(float(config[per_device_name]) * source.size)} -> {b} x {target.size} = "
                f"{_fmt(float(b) * target.size)} (times any gradient accumulation)",
                float(b) * target.size,
            )
        )
    if global_name is not None:
        before_g = _number(config, global_name, GLOBAL_BATCH)
        after_g: float | int = _finite(before_g * r, global_name, GLOBAL_BATCH)
        if _kind_of(config[global_name]) is int:
            after_g = _as_int(after_g)
            if abs(after_g - before_g * r) > 1e-9:
                notes.append(f"{global_name} rounded to {after_g}")
        steps.append(
            Step(
                "global batch",
                f"{_fmt(before_g)} x {_fmt(r)} = {_fmt(float(after_g))}",
                after_g,
                global_name,
                GLOBAL_BATCH,
            )
        )
        params[global_name] = after_g
        changes.append(Change(global_name, GLOBAL_BATCH, config[global_name], after_g))

    lr_factor = lr_factor_for(rule, r)
    if rule == "linear":
        lr_formula = f"linear rule: x r = x {_fmt(r)}"
    elif rule == "sqrt":
        lr_formula = f"square-root rule: x sqrt(r) = x sqrt({_fmt(r)}) = x {_fmt(lr_factor)}"
    else:
        lr_formula = "rule none: unchanged"
    if lr_name is not None:
        before_lr = _number(config, lr_name, LEARNING_RATE)
        after_lr = _finite(before_lr * lr_factor, lr_name, LEARNING_RATE)
        steps.append(
            Step(
                "learning rate",
                f"{lr_formula}: {_fmt(before_lr)} x {_fmt(lr_factor)} = {_fmt(after_lr)}",
                after_lr,
                lr_name,
                LEARNING_RATE,
            )
        )
        params[lr_name] = after_lr
        changes.append(Change(lr_name, LEARNING_RATE, config[lr_name], after_lr))
    else:
        notes.append("no parameter has the role learning_rate: nothing to scale by the rule")

    # Warm-up is a stretch of training, counted in samples by Goyal et al.; with r times
    # more samples per step the same stretch takes r times fewer steps.
    warmup_factor = 1.0 if rule == "none" or warmup == "same_steps" else 1.0 / r
    if warmup_name is not None:
        before_w = _number(config, warmup_name, WARMUP_STEPS)
        after_w: float | int = _finite(before_w * warmup_factor, warmup_name, WARMUP_STEPS)
        if _kind_of(config[warmup_name]) is int:
            after_w = max(0, round(after_w))
        if rule == "none":
            how = "rule none: unchanged"
        elif warmup == "same_steps":
            how = "kept in steps (asked for)"
        else:
            how = f"kept in samples: / r = / {_fmt(r)}"
        steps.append(
            Step(
                "warm-up steps",
                f"{how}: {_fmt(before_w)} -> {_fmt(float(after_w))}",
                after_w,
                warmup_name,
                WARMUP_STEPS,
            )
        )
        params[warmup_name] = after_w
        changes.append(Change(warmup_name, WARMUP_STEPS, config[warmup_name], after_w))

    return ScaleResult(
        rule=rule,
        source=source,
        target=target,
        world_factor=k,
        batch_factor=r,
        lr_factor=lr_factor,
        warmup_factor=warmup_factor,
        params=params,
        changes=[c for c in changes if c.before != c.after],
        steps=steps,
        notes=notes,
    )


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
