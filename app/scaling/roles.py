"""Parameter roles: which parameter of a config is the learning rate, a batch size or the
warm-up, as the search space declares it or, when it declares none, as its names say."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.engine.errors import ConfigError

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
class RoleAssignment:
    """Which parameter plays which role, and whether that was declared or guessed."""

    roles: dict[str, str]  # parameter name -> role
    inferred: bool
    notes: tuple[str, ...] = ()

    def param_for(self, role: str) -> str | None:
        return next((name for name, r in self.roles.items() if r == role), None)


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
