"""Every option a strategy or stopping rule reads, with its default: one model each.

A study body names its strategy (`strategy.name`) and gives its options beside the name;
a multi-fidelity scheduler also takes the options of its sampler (`strategy.sampler`).
The registry validates a body with these models, so a misspelled option is refused with
its name, and fills `StudyContext.options` from them, defaults included.

Stored studies are read leniently (`load_stored`): a key an older version accepted but
no model knows any more is dropped, and a value the models now refuse is kept as stored,
so that a study created before a change still runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from app.engine.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

DEFAULT_GRID_POINTS = 5
MAX_GRID_POINTS = 1000
DEFAULT_STARTUP_TRIALS = 10
DEFAULT_EI_CANDIDATES = 48
DEFAULT_PRIOR_BETA = 5.0
DEFAULT_MIN_TRIALS = 5
DEFAULT_RANDOM_FRACTION = 1 / 3


class Options(BaseModel):
    """Options of one strategy or rule. Integers are strict: `true` is not a count."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RandomOptions(Options):
    pass


class SobolOptions(Options):
    pass


class GridOptions(Options):
    grid_points: int = Field(
        default=DEFAULT_GRID_POINTS,
        ge=1,
        le=MAX_GRID_POINTS,
        description="Values a float (or a wide int range) takes along its scale.",
    )


class PriorOptions(Options):
    """How tpe and gp use the space's priors (app/engine/priors.py); no effect without."""

    prior_beta: float = Field(
        default=DEFAULT_PRIOR_BETA,
        ge=0,
        le=1e6,
        description="piBO's beta: the acquisition is weighted by prior(x) ** (beta / n).",
    )
    prior_mode_first: bool = Field(
        default=True, description="Run the priors' own values as the first trial."
    )


class TPEOptions(PriorOptions):
    n_startup_trials: int = Field(default=DEFAULT_STARTUP_TRIALS, ge=0, le=100_000)
    n_ei_candidates: int = Field(default=DEFAULT_EI_CANDIDATES, ge=1, le=10_000)


class GPOptions(PriorOptions):
    n_startup_trials: int = Field(default=DEFAULT_STARTUP_TRIALS, ge=0, le=100_000)


class HyperbandOptions(Options):
    sampler: str = Field(default="random", description="The sampler of new configs.")
    mode: Literal["stop", "pause"] = "stop"
    brackets: int | None = Field(default=None, ge=1, description="None: one per rung.")


class ASHAOptions(HyperbandOptions):
    # ASHA is Hyperband's most aggressive bracket alone.
    brackets: int | None = Field(default=1, ge=1)


class BOHBOptions(HyperbandOptions):
    random_fraction: float = Field(default=DEFAULT_RANDOM_FRACTION, ge=0, le=1)
    min_points: int | None = Field(
        default=None, ge=1, le=100_000, description="None: searchable parameters + 2."
    )


class MedianOptions(Options):
    rule: Literal["median"]
    min_trials: int = Field(default=DEFAULT_MIN_TRIALS, ge=0, le=1_000_000)
    warmup_steps: float = Field(default=0.0, ge=0)


class ForecastOptions(Options):
    rule: Literal["forecast"]
    threshold: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Stop when the probability of beating the best completed trial is lower.",
    )
    min_points: int = Field(
        default=3, ge=2, le=10_000, description="Reported points before a trial is forecast."
    )
    min_trials: int = Field(
        default=1, ge=1, le=1_000_000, description="Completed trials before the rule acts."
    )
    warmup_steps: float = Field(default=0.0, ge=0)
    horizon: float | None = Field(
        default=None,
        gt=0,
        description="The step curves end at. None: the fidelity's max, else the last step "
        "completed trials reached.",
    )


@lru_cache(maxsize=64)
def combined(scheduler: type[Options], sampler: type[Options]) -> type[Options]:
    """The options of a multi-fidelity scheduler together with those of its sampler."""
    if not sampler.model_fields:
        return scheduler
    return create_model(
        f"{scheduler.__name__}With{sampler.__name__}", __base__=(scheduler, sampler)
    )


def _first_error(model: type[BaseModel], error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return loc, f"unknown option; known: {known}" if known else "unknown option; none is known"
    return loc, str(first["msg"])


def parse(model: type[M], raw: Mapping[str, Any], prefix: str) -> M:
    """The options with their defaults; raises ConfigError naming `prefix.<option>`."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        loc, detail = _first_error(model, error)
        raise ConfigError(f"{prefix}.{loc}" if loc else prefix, detail) from None


def load_stored(model: type[M], raw: Mapping[str, Any] | None) -> M:
    """A model from settings stored by this or an older version, without raising.

    Keys the model does not know (any more) are dropped: `extra="forbid"` guards input,
    not reads. A value the model now refuses is kept as stored, as the code that read the
    raw JSON did, rather than failing a study that ran before the rule existed."""
    known = {key: value for key, value in (raw or {}).items() if key in model.model_fields}
    try:
        return model.model_validate(known)
    except ValidationError as error:
        refused = {str(e["loc"][0]) for e in error.errors() if e.get("loc")} & known.keys()
    try:
        valid = model.model_validate({k: v for k, v in known.items() if k not in refused})
    except ValidationError:
        return model.model_construct(**known)
    return valid.model_copy(update={key: known[key] for key in refused})
