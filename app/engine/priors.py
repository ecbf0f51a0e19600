"""Priors: what the user already believes about a parameter's good values.

A parameter may carry ``"prior": {"value": 3e-4, "confidence": "medium"}``. In the
space's unit coordinates a numeric prior is a normal distribution centred on the value's
unit coordinate and truncated to [0, 1]; its width follows the confidence. A categorical
prior gives its value several times the weight of each other choice. Parameters without
a prior are uniform, so `prior_log_pdf` is a proper log density over the unit cube
(0 where nothing is believed) and `sample_from_prior` draws from that same density.

tpe and gp weight their acquisition by the prior as piBO does (Hvarfner et al., 2022);
the multi-fidelity schedulers sample new configs from it as PriorBand does.

This module imports nothing from `app.engine.space` at import time (the space imports it
to parse the `prior` field); it reads a parameter's `type`, `to_unit` and `choices`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from app.engine.errors import ConfigError

if TYPE_CHECKING:
    from app.engine.space import Param, ParamValue, SearchSpace

Confidence = Literal["low", "medium", "high"]
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")
DEFAULT_CONFIDENCE: Confidence = "medium"

# Standard deviation of a numeric prior, in unit coordinates (the whole range is 1).
# "medium" puts about 70 % of the mass within 15 % of the range of the value; "low" is
# barely more than a nudge; "high" is a narrow belief that still leaves some mass
# everywhere, so that a wrong one can be overruled.
NUMERIC_SIGMA: dict[str, float] = {"low": 0.3, "medium": 0.15, "high": 0.06}
# A categorical prior's value weighs this many times each other choice.
CATEGORICAL_WEIGHT: dict[str, float] = {"low": 2.0, "medium": 4.0, "high": 8.0}

_ALLOWED_KEYS = {"value", "confidence"}


@dataclass(frozen=True)
class Prior:
    """The belief on one parameter: its likely best value and how sure the user is."""

    value: Any
    confidence: Confidence = DEFAULT_CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": self.confidence}


def parse_prior(raw: Any, param: Param, path: str) -> Prior:
    """The `prior` of `param` checked; `path` is the prior's own path (space.x.prior)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, 'must be an object like {"value": ..., "confidence": "medium"}')
    extra = sorted(set(raw) - _ALLOWED_KEYS)
    if extra:
        raise ConfigError(f"{path}.{extra[0]}", "is not a field of a prior")
    if "value" not in raw:
        raise ConfigError(f"{path}.value", "is required")
    confidence = raw.get("confidence", DEFAULT_CONFIDENCE)
    if confidence not in CONFIDENCES:
        raise ConfigError(
            f"{path}.confidence", f"must be one of {', '.join(CONFIDENCES)}, got {confidence!r}"
        )
    if param.type == "fixed":
        raise ConfigError(path, "a fixed parameter has no prior")
    value = param.validate(raw["value"], f"{path}.value")
    return Prior(value, confidence)


def _prior_of(param: Param) -> Prior | None:
    return getattr(param, "prior", None)


def has_prior(space: SearchSpace) -> bool:
    return any(_prior_of(p) is not None for p in space.searchable)


def _numeric_log_pdf(u: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    """Log density on [0, 1] of a normal(centre, sigma) truncated to [0, 1]."""
    mass = float(ndtr((1.0 - centre) / sigma) - ndtr((0.0 - centre) / sigma))
    z = (u - centre) / sigma
    return -0.5 * z * z - math.log(sigma * math.sqrt(2.0 * math.pi) * max(mass, 1e-300))


def _categorical_probs(param: Param, prior: Prior) -> np.ndarray:
    choices = param.choices  # type: ignore[union-attr]
    weights = np.ones(len(choices))
    weights[param.index(prior.value)] = CATEGORICAL_WEIGHT[prior.confidence]  # type: ignore[union-attr]
    return weights / weights.sum()


def param_log_pdf(param: Param, units: np.ndarray, uniform_share: float = 0.0) -> np.ndarray:
    """Log prior density of one parameter at unit coordinates; NaN (inactive) gives 0.
    `uniform_share` mixes the belief with the uniform density (see prior_log_pdf)."""
    units = np.asarray(units, dtype=float)
    out = np.zeros(units.shape)
    prior = _prior_of(param)
    active = ~np.isnan(units)
    if prior is None or not active.any():
        return out
    u = np.clip(units[active], 0.0, 1.0)
    if param.type == "categorical":
        probs = _categorical_probs(param, prior)
        size = len(probs)
        index = np.minimum(size - 1, (u * size).astype(int))
        # A choice owns 1/size of the unit interval: its density there is p * size.
        density = probs[index] * size
    else:
        centre = param.to_unit(prior.value)
        density = np.exp(_numeric_log_pdf(u, centre, NUMERIC_SIGMA[prior.confidence]))
    out[active] = np.log((1.0 - uniform_share) * density + uniform_share)
    return out


def prior_log_pdf(space: SearchSpace, units: np.ndarray, uniform_share: float = 0.0) -> np.ndarray:
    """Log prior density of unit-cube rows (columns: `space.searchable` in order).

    0 for a parameter without a prior, and for a NaN coordinate (a parameter inactive
    in that config), so a space without any prior gives 0 everywhere. With
    `uniform_share` > 0 each parameter's belief is mixed with the uniform density: the
    density then never falls below that share, which bounds how much a wrong belief can
    outweigh the data.
    """
    rows = np.atleast_2d(np.asarray(units, dtype=float))
    total = np.zeros(rows.shape[0])
    for column, param in enumerate(space.searchable):
        if _prior_of(param) is not None:
            total += param_log_pdf(param, rows[:, column], uniform_share)
    return total


def sample_units(space: SearchSpace, rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """`n` unit-cube rows drawn from the prior (uniform where a parameter has none)."""
    params = space.searchable
    rows = rng.random((n, len(params)))
    for column, param in enumerate(params):
        prior = _prior_of(param)
        if prior is None:
            continue
        if param.type == "categorical":
            probs = _categorical_probs(param, prior)
            size = len(probs)
            index = rng.choice(size, size=n, p=probs)
            rows[:, column] = (index + 0.5) / size
            continue
        centre = param.to_unit(prior.value)
        sigma = NUMERIC_SIGMA[prior.confidence]
        # Inverse CDF of the truncated normal: exact, and one draw per row.
        lo, hi = ndtr((0.0 - centre) / sigma), ndtr((1.0 - centre) / sigma)
        q = lo + rows[:, column] * (hi - lo)
        rows[:, column] = np.clip(centre + sigma * ndtri(np.clip(q, 1e-300, 1 - 1e-16)), 0, 1)
    return rows


def sample_from_prior(space: SearchSpace, rng: np.random.Generator) -> dict[str, ParamValue]:
    """One config drawn from the prior (uniform for parameters without one)."""
    return space.from_unit(sample_units(space, rng, 1)[0].tolist())


def mode_units(space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
    """One unit-cube row at the prior's values (uniform draws where a parameter has none)."""
    params = space.searchable
    row = rng.random(len(params))
    for column, param in enumerate(params):
        prior = _prior_of(param)
        if prior is not None:
            row[column] = param.to_unit(prior.value)
    return row


def prior_mode(space: SearchSpace, rng: np.random.Generator) -> dict[str, ParamValue]:
    """The user's own config: every prior's value (parameters without one drawn uniformly).
    Samplers run it first, as PriorBand runs the default config first: when the belief is
    right it is the best start there is, and when it is wrong it costs one trial."""
    return space.from_unit(mode_units(space, rng).tolist())
