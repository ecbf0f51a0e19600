"""PB2's explore: a time-varying Gaussian-process bandit (Parker-Holder et al., 2020).

Each observation is one interval a member trained: the time it ended `t`, the reward the
weights started from `r_before`, the numeric hyperparameters (unit coordinates of the
space, so a log-scale learning rate is modelled on its log), and `y`, the reward gained
per fidelity unit. The kernel is Ray Tune's TV_SquaredExp: a squared exponential over
(r_before, params) times (1 - epsilon)^(|t - t'| / 2), so that old intervals weigh less
as the best hyperparameters drift. The next params maximise UCB at the new interval's
time and starting reward: the mean of the model of the data plus kappa times the
variance of a model that also holds the params other members are running now (with
y = 0: the variance does not depend on y), so parallel choices spread out.

Differences from Ray's pb2_utils: numpy/scipy instead of GPy, params on the space's unit
scale instead of raw [min, max], the kernel's hyperparameters (variance, lengthscale,
epsilon, noise) fitted by L-BFGS-B from one start, and the acquisition maximised over
1,000 seeded random points then refined from the best three. The data are capped at the
newest 200 observations (Ray selects a length between 200 and 1,000 by likelihood).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from app.engine.space import FloatParam, IntParam, ParamValue

MAX_ROWS = 200
MIN_ROWS = 3
CANDIDATES = 1000
REFINED = 3  # local refinements of the best candidates


def _kernel(
    a: np.ndarray, b: np.ndarray, variance: float, lengthscale: float, epsilon: float
) -> np.ndarray:
    """Column 0 is time; the rest is (r_before, params)."""
    dt = np.abs(a[:, :1] - b[:, :1].T)
    sq = np.sum((a[:, None, 1:] - b[None, :, 1:]) ** 2, axis=2)
    return variance * np.exp(-sq / lengthscale) * (1.0 - epsilon) ** (0.5 * dt)


def _distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|t - t'| and the squared distance over (r_before, params): what the kernel needs,
    computed once per fit rather than at every likelihood evaluation."""
    dt = np.abs(a[:, :1] - b[:, :1].T)
    sq = np.sum((a[:, None, 1:] - b[None, :, 1:]) ** 2, axis=2)
    return dt, sq


def _neg_log_likelihood(theta: np.ndarray, dt: np.ndarray, sq: np.ndarray, y: np.ndarray) -> float:
    variance, lengthscale, epsilon, noise = _unpack(theta)
    k = variance * np.exp(-sq / lengthscale) * (1.0 - epsilon) ** (0.5 * dt)
    k[np.diag_indices_from(k)] += noise + 1e-8
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return 1e10
    alpha = cho_solve((chol, True), y)
    return float(
        0.5 * y @ alpha + np.sum(np.log(np.diag(chol))) + 0.5 * len(y) * math.log(2 * math.pi)
    )


def _unpack(theta: np.ndarray) -> tuple[float, float, float, float]:
    log_var, log_len, eps, log_noise = (float(v) for v in theta)
    return math.exp(log_var), math.exp(log_len), eps, math.exp(log_noise)


class _GP:
    def __init__(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> None:
        self.x = x
        self.variance, self.lengthscale, self.epsilon, self.noise = _unpack(theta)
        k = _kernel(x, x, self.variance, self.lengthscale, self.epsilon)
        k += (self.noise + 1e-8) * np.eye(len(x))
        self.chol = np.linalg.cholesky(k)
        self.alpha = cho_solve((self.chol, True), y)

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ks = _kernel(points, self.x, self.variance, self.lengthscale, self.epsilon)
        mean = ks @ self.alpha
        v = solve_triangular(self.chol, ks.T, lower=True, check_finite=False)
        var = np.maximum(self.variance - np.sum(v * v, axis=0), 1e-12)
        return mean, var


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    start = np.array([0.0, 0.0, 0.1, math.log(0.1)])
    bounds = [(-4.0, 3.0), (math.log(1e-3), 0.0), (0.0, 0.5), (math.log(1e-4), 0.0)]
    dt, sq = _distances(x, x)
    try:
        result = minimize(
            _neg_log_likelihood,
            start,
            args=(dt, sq, y),
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 50},
        )
        theta = np.asarray(result.x, dtype=float)
    except (ValueError, np.linalg.LinAlgError):
        theta = start
    if not np.all(np.isfinite(theta)):
        theta = start
    return theta


def select(
    params: Sequence[FloatParam | IntParam],
    rows: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
    *,
    time: float,
    reward_before: float,
    seed: int,
) -> dict[str, ParamValue] | None:
    """The numeric params maximising UCB for an interval starting at `time` from weights
    worth `reward_before`; None with fewer than MIN_ROWS usable observations."""
    # The matrices are small: multi-threaded BLAS spends more time waking threads than
    # computing, by orders of magnitude on a busy host (as in app/engine/samplers/gp.py).
    with threadpool_limits(limits=1, user_api="blas"):
        return _select(params, rows, current, time, reward_before, seed)


def _select(
    params: Sequence[FloatParam | IntParam],
    rows: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
    time: float,
    reward_before: float,
    seed: int,
) -> dict[str, ParamValue] | None:
    names = [p.name for p in params]
    usable = [
        r for r in rows if all(n in r["params"] for n in names) and math.isfinite(float(r["y"]))
    ]
    usable.sort(key=lambda r: float(r["t"]))
    usable = usable[-MAX_ROWS:]
    if len(usable) < MIN_ROWS:
        return None
    units = np.array(
        [[p.to_unit(r["params"][p.name]) for p in params] for r in usable], dtype=float
    )
    fixed = np.array([[float(r["t"]), float(r["r_before"])] for r in usable], dtype=float)
    low, high = fixed.min(axis=0), fixed.max(axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    x = np.hstack([(fixed - low) / span, units])
    y = np.array([float(r["y"]) for r in usable], dtype=float)
    y = np.clip((y - y.mean()) / (y.std() + 1e-8), -2.0, 2.0)
    theta = _fit(x, y)
    model = _GP(x, y, theta)
    point = (np.array([time, reward_before], dtype=float) - low) / span
    if current:
        pending = np.array(
            [
                [*point, *[p.to_unit(c[p.name]) for p in params]]
                for c in current
                if all(p.name in c for p in params)
            ],
            dtype=float,
        ).reshape(-1, x.shape[1])
        spread = _GP(np.vstack([x, pending]), np.concatenate([y, np.zeros(len(pending))]), theta)
    else:
        spread = model
    beta = 0.2 * math.log(max(0.4 * len(x), 1.0 + 1e-9))
    kappa = math.sqrt(max(beta, 1e-4))

    def ucb(u: np.ndarray) -> np.ndarray:
        full = np.hstack([np.tile(point, (len(u), 1)), u])
        mean, _ = model.predict(full)
        _, var = spread.predict(full)
        return mean + kappa * var

    rng = np.random.default_rng(seed)
    candidates = rng.random((CANDIDATES, len(params)))
    scores = ucb(candidates)
    best_u, best_score = candidates[int(np.argmax(scores))], float(np.max(scores))
    for start in candidates[np.argsort(-scores)[:REFINED]]:
        result = minimize(
            lambda u: -float(ucb(u.reshape(1, -1))[0]),
            start,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * len(params),
            options={"maxiter": 30},
        )
        if -float(result.fun) > best_score:
            best_u, best_score = np.clip(result.x, 0.0, 1.0), -float(result.fun)
    return {p.name: p.from_unit(float(u)) for p, u in zip(params, best_u, strict=True)}
