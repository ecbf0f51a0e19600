"""Gaussian-process Bayesian optimization: Matern 5/2 ARD kernel, log expected improvement.

Written on numpy/scipy (no torch): the kernel hyperparameters are fitted by maximum a
posteriori with analytic gradients (L-BFGS-B), warm-started from the values stored on
the previous trial, so that a fit at 1,000 trials costs a few iterations. Categoricals
are one-hot inputs. Pending trials are conditioned on with the best value seen
(constant liar "min"), which drives the expected improvement at and near them to zero.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import log_ndtr
from threadpoolctl import threadpool_limits

from app.engine import priors
from app.engine.base import History, Sampler, Suggestion, unit_rng_seed
from app.engine.index import HistoryIndex, rank_key
from app.engine.samplers import observations
from app.engine.samplers.observations import Encoding
from app.engine.samplers.tpe import (
    PRIOR_BETA,
    PRIOR_UNIFORM_SHARE,
    Columns,
    prior_exponent,
    startup_config,
)
from app.engine.space import ParamValue, SearchSpace

DEFAULT_STARTUP_TRIALS = 10
MAX_FIT_POINTS = 150  # hyperparameters are fitted on at most this many results
MAX_MODEL_POINTS = 400  # the posterior conditions on at most this many
POOL_RECENT = 100  # of those, the most recent results (beside the best and a spread)
_SQRT5 = math.sqrt(5.0)
_NOISE_FLOOR = 1e-6


# The unit coordinate a parameter inactive in a config takes (conditional spaces): one
# fixed value, so that configs differing only in an inactive parameter coincide.
INACTIVE_UNIT = 0.5


def _encode(encoding: Encoding, configs: Sequence[Mapping[str, ParamValue]]) -> np.ndarray:
    """Numeric unit coordinates, then each categorical one-hot. A parameter missing from
    a config (inactive) takes INACTIVE_UNIT, or no choice at all for a categorical."""
    if encoding.space.conditional:
        units, indices = Columns(encoding.space).encode(configs)
        units = np.where(np.isnan(units), INACTIVE_UNIT, units)
    else:
        units, indices = encoding.encode(configs)
    blocks = [units]
    for column, param in enumerate(encoding.categorical):
        one_hot = np.zeros((len(configs), len(param.choices)))
        rows = np.flatnonzero(indices[:, column] >= 0)
        one_hot[rows, indices[rows, column]] = 1.0
        blocks.append(one_hot)
    return np.hstack(blocks) if blocks else np.zeros((len(configs), 0))


def _searchable_units(encoding: Encoding, points: np.ndarray) -> np.ndarray:
    """Rows over `space.searchable` (as priors.prior_log_pdf reads them) from encoded
    points: numeric coordinates as they are, a categorical at its chosen choice's centre."""
    columns = Columns(encoding.space)
    n_numeric = len(encoding.numeric)
    out = np.empty((len(points), len(columns.searchable)))
    out[:, columns.numeric_at] = points[:, :n_numeric]
    offset = n_numeric
    for column, param in enumerate(encoding.categorical):
        size = len(param.choices)
        chosen = np.argmax(points[:, offset : offset + size], axis=1)
        out[:, columns.categorical_at[column]] = (chosen + 0.5) / size
        offset += size
    return out


def _impute_inactive(
    space: SearchSpace, encoding: Encoding, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of a conditional space with their inactive coordinates set as the
    observed configs have them (_encode), so that the model predicts them alike; and
    their rows over `space.searchable` with NaN where inactive (for the prior)."""
    searchable = _searchable_units(encoding, points)
    configs = [space.from_unit(row.tolist()) for row in searchable]
    for column, param in enumerate(space.searchable):
        searchable[[param.name not in c for c in configs], column] = math.nan
    return _encode(encoding, configs), searchable


def _matern(
    x1: np.ndarray, x2: np.ndarray, lengthscales: np.ndarray, variance: float
) -> np.ndarray:
    a, b = x1 / lengthscales, x2 / lengthscales
    # |a - b|^2 through the dot product: no (n, m, d) temporary.
    sq = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
    r = np.sqrt(np.maximum(sq, 1e-30))
    return np.asarray(variance * (1 + _SQRT5 * r + 5.0 / 3.0 * r**2) * np.exp(-_SQRT5 * r))


class _GP:
    """theta = (log lengthscale per input, log signal variance, log noise variance)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self.dims = x.shape[1]

    def neg_log_posterior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        x, y, dims = self.x, self.y, self.dims
        ls = np.exp(theta[:dims])
        variance, noise = math.exp(theta[dims]), math.exp(theta[dims + 1]) + _NOISE_FLOOR
        sq = ((x[:, None, :] - x[None, :, :]) / ls) ** 2  # (n, n, d)
        r = np.sqrt(np.maximum(sq.sum(axis=2), 1e-30))
        e = np.exp(-_SQRT5 * r)
        k = variance * (1 + _SQRT5 * r + 5.0 / 3.0 * r**2) * e
        kn = k + noise * np.eye(len(x))
        try:
            factor = cho_factor(kn, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(factor, y)
        log_det = 2 * np.log(np.diag(factor[0])).sum()
        nll = 0.5 * y @ alpha + 0.5 * log_det + 0.5 * len(x) * math.log(2 * math.pi)
        inner = np.outer(alpha, alpha) - cho_solve(factor, np.eye(len(x)))
        grad = np.empty_like(theta)
        # dK/dlog(l_d) = variance * 5/3 * (1 + sqrt5 r) e^(-sqrt5 r) * (x_d - x'_d)^2 / l_d^2
        common = variance * 5.0 / 3.0 * (1 + _SQRT5 * r) * e
        grad[:dims] = -0.5 * np.einsum("ij,ijd->d", inner * common, sq)
        grad[dims] = -0.5 * np.sum(inner * k)
        grad[dims + 1] = -0.5 * np.trace(inner) * (noise - _NOISE_FLOOR)
        # Priors: lengthscales near the unit range, a small noise, variance near 1.
        prior_mean = np.log(0.5)
        nll += 0.5 * np.sum(((theta[:dims] - prior_mean) / 1.5) ** 2)
        grad[:dims] += (theta[:dims] - prior_mean) / 1.5**2
        nll += 0.5 * (theta[dims] / 1.5) ** 2
        grad[dims] += theta[dims] / 1.5**2
        nll += 0.5 * ((theta[dims + 1] - math.log(1e-3)) / 3.0) ** 2
        grad[dims + 1] += (theta[dims + 1] - math.log(1e-3)) / 9.0
        return float(nll), grad

    def fit(self, start: np.ndarray | None) -> np.ndarray:
        default = np.concatenate([np.full(self.dims, np.log(0.5)), [0.0, math.log(1e-3)]])
        # The previous fit is a cheap start; the default one keeps a stale optimum from sticking.
        starts = [default] if start is None else [start, default]
        bounds = [(math.log(1e-2), math.log(20.0))] * self.dims + [
            (math.log(0.05), math.log(20.0)),
            (math.log(1e-8), math.log(1.0)),
        ]
        best_theta, best_value = default, math.inf
        for theta0 in starts:
            result = minimize(
                self.neg_log_posterior,
                np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds]),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 50 if start is None else 20},
            )
            if result.fun < best_value:
                best_theta, best_value = np.asarray(result.x), float(result.fun)
        return best_theta


class _Posterior:
    def __init__(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> None:
        dims = x.shape[1]
        self.x = x
        self.ls = np.exp(theta[:dims])
        self.variance = math.exp(theta[dims])
        noise = math.exp(theta[dims + 1]) + _NOISE_FLOOR
        kn = _matern(x, x, self.ls, self.variance) + noise * np.eye(len(x))
        kn[np.diag_indices_from(kn)] += 1e-9
        self.chol = np.linalg.cholesky(kn)
        self.alpha = cho_solve((self.chol, True), y)

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ks = _matern(points, self.x, self.ls, self.variance)
        mean = ks @ self.alpha
        v = solve_triangular(self.chol, ks.T, lower=True)
        var = np.maximum(self.variance - (v**2).sum(axis=0), 1e-12)
        return mean, np.sqrt(var)


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """log EI for minimization, stable far into the tail (where plain EI underflows)."""
    z = (best - mean) / std
    # EI = std * (z * Phi(z) + phi(z)); for z << 0 use the asymptotic log(phi(z) / z^2).
    log_phi = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.log(np.maximum(z * np.exp(log_ndtr(z)) + np.exp(log_phi), 1e-300))
        tail = log_phi - 2 * np.log(np.abs(z))
    return np.log(std) + np.where(z > -6, direct, tail)


def _subset(numbers: list[int], limit: int) -> list[int]:
    """Positions of the best half (observations come best first) and the most recent rest."""
    if len(numbers) <= limit:
        return list(range(len(numbers)))
    best = list(range(limit // 2))
    rest = sorted(range(limit // 2, len(numbers)), key=lambda i: -numbers[i])
    return best + rest[: limit - len(best)]


def _pool(
    index: HistoryIndex,
    ranked: Sequence[tuple[tuple[float, float, float], int, int]],
    end: int,
    recent: Sequence[tuple[int, int]],
) -> list[int]:
    """Positions (in rank order) of the results the model may use, out of ranked[:end]:
    all of them up to MAX_MODEL_POINTS; beyond, the best half of that, the POOL_RECENT
    most recent (`recent`: (number, id) of the group, oldest first), and the rest spread
    evenly over the remaining ranks, so that the model still sees the whole range."""
    if end <= MAX_MODEL_POINTS:
        return list(range(end))
    best = MAX_MODEL_POINTS // 2
    chosen = set(range(best))
    for number, trial_id in recent[-POOL_RECENT:]:
        key = rank_key(index.records[trial_id], index.direction)
        if key is not None:
            chosen.add(bisect_left(ranked, (key, number, trial_id), 0, end))
    spread = MAX_MODEL_POINTS - len(chosen)
    chosen.update(best + p for p in observations.subsample(end - best, 0, spread))
    return sorted(chosen)


class GPSampler(Sampler):
    """Options: `n_startup_trials` (10 random configs first)."""

    name = "gp"

    def suggest(self, history: History) -> Suggestion:
        # The matrices here are small: multi-threaded BLAS spends more time waking threads
        # than computing (a 50x50 solve took 7 ms with 2 threads on a busy host, 0.4 ms
        # with one), and an API process should not take every core for one ask.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._suggest(history)

    def _suggest(self, history: History) -> Suggestion:
        space = self.context.space
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, history.count(), salt=29))
        startup = int(self.context.options.get("n_startup_trials", DEFAULT_STARTUP_TRIALS))
        index = history.index(self.context.direction)
        ranked = index.ranked()
        if len(ranked) < max(startup, 2) or not space.searchable:
            mode_first = bool(self.context.options.get("prior_mode_first", True))
            return Suggestion(params=startup_config(space, rng, history.count(), mode_first))

        encoding = Encoding(space)
        # Results a scheduler ended early are ranked below full ones (observations.py);
        # the GP needs one comparable scale, so it models only the best tier present.
        top_tier = ranked[0][0][:2]
        tier_end = bisect_left(ranked, ((top_tier[0], top_tier[1], math.inf),))
        if tier_end >= max(startup, 2):
            pool = _pool(index, ranked, tier_end, index.tier_numbers(top_tier))
        else:
            pool = _pool(index, ranked, len(ranked), ())
        observed = observations.from_index(index, [ranked[p] for p in pool], 0, len(ranked))
        configs = observed.params
        raw = np.array(observed.values)
        x_all = _encode(encoding, configs)
        # Standardize, and squash outliers: one diverged run must not flatten the model.
        median = float(np.median(raw))
        spread = float(np.std(raw)) or 1.0
        y_all = np.clip((raw - median) / spread, -6.0, 6.0)
        y_all = (y_all - y_all.mean()) / (y_all.std() or 1.0)

        start = self._previous_theta(history, x_all.shape[1] + 2)
        numbers = observed.numbers
        fit_rows = _subset(numbers, MAX_FIT_POINTS)
        theta = _GP(x_all[fit_rows], y_all[fit_rows]).fit(start)

        model_rows = _subset(numbers, MAX_MODEL_POINTS)
        x, y = x_all[model_rows], y_all[model_rows]
        best = float(y.min())
        if observed.pending:
            x = np.vstack([x, _encode(encoding, observed.pending)])
            y = np.concatenate([y, np.full(len(observed.pending), best)])
        posterior = _Posterior(x, y, theta)
        beta = float(self.context.options.get("prior_beta", PRIOR_BETA))
        exponent = prior_exponent(len(ranked), beta) if priors.has_prior(space) else 0.0
        choice = self._maximize(
            encoding, posterior, best, x_all[np.argsort(y_all)[:5]], rng, exponent
        )
        units = choice[: len(encoding.numeric)]
        indices, offset = [], len(encoding.numeric)
        for param in encoding.categorical:
            block = choice[offset : offset + len(param.choices)]
            indices.append(int(np.argmax(block)))
            offset += len(param.choices)
        params = Columns(space).decode(units, np.asarray(indices, dtype=int))
        return Suggestion(params=params, extra={"gp_theta": [round(float(t), 6) for t in theta]})

    def _previous_theta(self, history: History, size: int) -> np.ndarray | None:
        latest = history.index(self.context.direction).latest_with("gp_theta")
        theta = None if latest is None else latest.extra.get("gp_theta")
        if isinstance(theta, list) and len(theta) == size:
            return np.array(theta, dtype=float)
        return None

    @staticmethod
    def _maximize(
        encoding: Encoding,
        posterior: _Posterior,
        best: float,
        incumbents: np.ndarray,
        rng: np.random.Generator,
        prior_exponent: float = 0.0,
    ) -> np.ndarray:
        """Random candidates, then shrinking Gaussian steps around the best ones found.

        With a prior, log EI + prior_exponent * log prior(x) (piBO), and 500 more random
        candidates come from the prior, where that product is large."""
        n_numeric = len(encoding.numeric)
        space = encoding.space
        conditional = space.conditional

        def random_points(count: int) -> np.ndarray:
            parts = [rng.random((count, n_numeric))]
            for param in encoding.categorical:
                one_hot = np.zeros((count, len(param.choices)))
                one_hot[np.arange(count), rng.integers(len(param.choices), size=count)] = 1.0
                parts.append(one_hot)
            return np.hstack(parts)

        def score(points: np.ndarray) -> np.ndarray:
            units: np.ndarray | None = None
            if conditional:
                points[:], units = _impute_inactive(space, encoding, points)
            mean, std = posterior.predict(points)
            value = log_expected_improvement(mean, std, best)
            if prior_exponent > 0:
                if units is None:
                    units = _searchable_units(encoding, points)
                value = value + prior_exponent * priors.prior_log_pdf(
                    space, units, PRIOR_UNIFORM_SHARE
                )
            return value

        candidates = [random_points(2000), incumbents]
        if prior_exponent > 0:
            layout = Columns(space)
            drawn = priors.sample_units(space, rng, 500)
            one_hot = random_points(500)
            one_hot[:, :n_numeric] = drawn[:, layout.numeric_at]
            offset = n_numeric
            for column, param in enumerate(encoding.categorical):
                size = len(param.choices)
                at = layout.categorical_at[column]
                chosen = np.minimum(size - 1, (drawn[:, at] * size).astype(int))
                one_hot[:, offset : offset + size] = np.eye(size)[chosen]
                offset += size
            candidates.append(one_hot)
        pool = np.vstack(candidates)
        values = score(pool)
        for scale in (0.1, 0.03, 0.01, 0.003, 0.001):
            top = pool[np.argsort(-values)[:10]]
            moved = np.repeat(top, 20, axis=0)
            moved[:, :n_numeric] = np.clip(
                moved[:, :n_numeric] + rng.normal(0, scale, (len(moved), n_numeric)), 0.0, 1.0
            )
            if scale == 0.1 and encoding.categorical:
                moved[::4, n_numeric:] = random_points(len(moved[::4]))[:, n_numeric:]
            moved_values = score(moved)
            pool = np.vstack([pool, moved])
            values = np.concatenate([values, moved_values])
        return np.asarray(pool[int(np.argmax(values))])
