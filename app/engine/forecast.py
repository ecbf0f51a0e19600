"""Learning-curve forecasts: where a curve will end, from its points so far.

A parametric ensemble in the spirit of Domhan et al. (IJCAI 2015): each family is
`y = c + a * g(t; theta)` with a fixed shape `g` (power law, exponential decay,
log-power, Janoschek, log-linear). For a given shape parameter `theta` the level `c` and
the amplitude `a` are a linear least-squares fit, so each family is fitted by trying a
small grid of shapes at once (one matrix product) instead of a nonlinear optimiser: a
forecast of a curve of 60 points costs well under a millisecond, whatever the study's
size, and never fails to converge.

The families are weighted by their BIC. The interval at a future step combines the
families' disagreement there (how differently plausible shapes extrapolate: wide when
few points are known) with the residual noise of the fits, which grows with the
distance extrapolated. The value at the horizon is then treated as normal with that
mean and spread, which gives the probability that the curve ends better than a value.

Values are fitted as given; callers orient them (smaller is better) where it matters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

# Points a fit uses at most: a long curve is thinned (evenly in log-step, keeping its
# last points), so the cost per decision stays flat however long a trial runs.
MAX_POINTS = 60
# Future steps a forecast lists (for the dashboard's band).
BAND_STEPS = 24
# The interval drawn and quoted: mean +/- Z * spread (90 %).
Z_INTERVAL = 1.645


@dataclass(frozen=True)
class Forecast:
    """The curve's expected values at future `steps`, with a 90 % interval each."""

    last_step: float
    steps: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    spread: tuple[float, ...]  # standard deviation at each step
    families: tuple[str, ...]  # the families that carried the ensemble, heaviest first

    @property
    def final(self) -> float:
        return self.mean[-1]

    @property
    def final_spread(self) -> float:
        return self.spread[-1]

    def probability_below(self, value: float) -> float:
        """Probability that the value at the horizon is below `value`."""
        spread = max(self.final_spread, 1e-12)
        return float(ndtr((value - self.final) / spread))

    def to_dict(self) -> dict[str, Any]:
        """A compact form stored on a trial (`extra.forecast`) and drawn by the dashboard."""
        return {
            "from_step": self.last_step,
            "steps": [_round(s) for s in self.steps],
            "mean": [_round(v) for v in self.mean],
            "low": [_round(v) for v in self.low],
            "high": [_round(v) for v in self.high],
            "families": list(self.families),
        }


def _round(value: float) -> float:
    return float(f"{value:.5g}")


def _shapes(horizon: float) -> tuple[list[str], list[int], Any]:
    """Every (family, theta) shape as a function of the steps: names, the number of
    shape parameters of each family (for the BIC) and a function t -> matrix."""
    scale = max(horizon, 1.0)
    pow_k = np.geomspace(0.05, 3.0, 14)
    exp_k = np.geomspace(0.3, 40.0, 14)
    logpow_b = np.geomspace(0.02, 2.0, 6)
    logpow_k = np.array([0.5, 1.0, 2.0, 4.0])
    jan_b = np.geomspace(0.3, 40.0, 7)
    jan_k = np.array([0.3, 0.6, 1.0, 1.6])
    names = ["pow3", "exponential", "log-power", "janoschek", "log-linear"]
    sizes = [len(pow_k), len(exp_k), len(logpow_b) * len(logpow_k), len(jan_b) * len(jan_k), 1]

    def matrix(t: np.ndarray) -> np.ndarray:
        t = np.maximum(np.asarray(t, dtype=float), 1e-9)
        u = t / scale  # steps as a fraction of the horizon
        rows = [
            u[None, :] ** -pow_k[:, None],
            np.exp(-exp_k[:, None] * u[None, :]),
            (
                1.0
                / (1.0 + (u[None, None, :] / logpow_b[:, None, None]) ** logpow_k[None, :, None])
            ).reshape(-1, len(u)),
            np.exp(-jan_b[:, None, None] * u[None, None, :] ** jan_k[None, :, None]).reshape(
                -1, len(u)
            ),
            np.log(u)[None, :],
        ]
        return np.concatenate(rows, axis=0)

    return names, sizes, matrix


def _thin(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(steps) <= MAX_POINTS:
        return steps, values
    keep = np.unique(
        np.rint(np.geomspace(1, len(steps), MAX_POINTS)).astype(int) - 1
    )  # denser near the end, where the curve's level is decided
    keep = np.union1d(keep, np.arange(len(steps) - 5, len(steps)))
    return steps[keep], values[keep]


def forecast(
    curve: Mapping[float, float] | Sequence[tuple[float, float]],
    horizon: float,
    min_points: int = 3,
) -> Forecast | None:
    """The forecast of `curve` (step -> value) up to `horizon`; None when it has fewer
    than `min_points` finite points or has already reached the horizon."""
    items = sorted(curve.items() if isinstance(curve, Mapping) else curve)
    pairs = [(float(s), float(v)) for s, v in items if math.isfinite(v) and math.isfinite(s)]
    if len(pairs) < max(2, min_points):
        return None
    steps = np.array([p[0] for p in pairs])
    values = np.array([p[1] for p in pairs])
    last = float(steps[-1])
    if last >= horizon or (steps[0] <= 0 and len(steps) < 3):
        return None
    steps = np.maximum(steps, 1e-6)
    steps, values = _thin(steps, values)
    n = len(steps)
    names, sizes, matrix = _shapes(horizon)
    g = matrix(steps)  # shapes x points
    g_mean = g.mean(axis=1, keepdims=True)
    centred = g - g_mean
    var = (centred**2).sum(axis=1)
    y_mean = float(values.mean())
    usable = var > 1e-18
    amplitude = np.where(usable, centred @ (values - y_mean) / np.where(usable, var, 1.0), 0.0)
    level = y_mean - amplitude * g_mean[:, 0]
    fitted = level[:, None] + amplitude[:, None] * g
    sse = ((fitted - values[None, :]) ** 2).sum(axis=1)
    sse = np.where(usable, sse, np.inf)
    # The best shape of each family.
    chosen: list[tuple[str, int, int]] = []  # (name, shape row, shape parameters)
    start = 0
    for name, size in zip(names, sizes, strict=True):
        block = sse[start : start + size]
        if np.isfinite(block).any():
            chosen.append((name, start + int(np.argmin(block)), 0 if size == 1 else 1))
        start += size
    if not chosen:
        return None
    rows = np.array([row for _, row, _ in chosen])
    params = np.array([2 + extra for _, _, extra in chosen])
    scale = max(float(np.var(values)), 1e-12)
    # BIC with a floor on the residual variance: a family that threads every point of a
    # short curve is not infinitely more likely than one that misses them by noise.
    floor = 1e-4 * scale + 1e-12
    bic = n * np.log(np.maximum(sse[rows] / n, floor)) + params * math.log(max(n, 2))
    weights = np.exp(-0.5 * (bic - bic.min()))
    weights /= weights.sum()
    # A tenth of the weight is shared by every family that fits nearly as well as the
    # best (within 4x its squared error): on a smooth curve the BIC crowns one family
    # by a margin that says little about how the curve goes on past the data.
    close = sse[rows] <= 4.0 * max(float(sse[rows].min()), floor * n)
    weights = 0.9 * weights + 0.1 * close / close.sum()
    future = _future_steps(last, horizon)
    g_future = matrix(future)[rows]
    predictions = level[rows, None] + amplitude[rows, None] * g_future
    mean = weights @ predictions
    between = weights @ (predictions - mean[None, :]) ** 2
    dof = max(n - 3, 1)
    best = int(np.argmax(weights))
    noise = float(sse[rows][best]) / dof
    if n < 5:
        # Too few points to know the noise: assume at least a tenth of the curve's spread.
        noise = max(noise, 0.01 * scale)
    reach = np.log1p((future - last) / max(last, 1e-9))
    # How much the curve is still expected to move is itself uncertain: a third of the
    # predicted change from the last fitted value is added to the spread.
    still_to_move = mean - float(weights @ fitted[rows, -1])
    spread = np.sqrt(between + noise * (1.0 + reach) + (0.35 * still_to_move) ** 2)
    order = np.argsort(-weights)
    return Forecast(
        last_step=last,
        steps=tuple(float(s) for s in future),
        mean=tuple(float(v) for v in mean),
        low=tuple(float(v) for v in mean - Z_INTERVAL * spread),
        high=tuple(float(v) for v in mean + Z_INTERVAL * spread),
        spread=tuple(float(v) for v in spread),
        families=tuple(chosen[i][0] for i in order if weights[i] > 0.05),
    )


def _future_steps(last: float, horizon: float) -> np.ndarray:
    """Up to BAND_STEPS steps after `last`, ending exactly at `horizon`: whole steps when
    they fit, otherwise spread evenly."""
    whole = np.arange(math.floor(last) + 1, math.floor(horizon) + 1, dtype=float)
    if 0 < len(whole) <= BAND_STEPS:
        steps = whole
    else:
        steps = np.linspace(last, horizon, BAND_STEPS + 1)[1:]
    if steps[-1] < horizon:
        steps = np.append(steps, horizon)
    return steps
