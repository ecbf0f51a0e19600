"""Tree-structured Parzen Estimator, multivariate, in the space's unit coordinates.

Follows Optuna's TPESampler (multivariate, constant liar): the best gamma(n) results
form l(x), the rest g(x); candidates drawn from l(x) are scored by log l(x) - log g(x).
It is re-implemented here rather than wrapped because an Optuna study would have to be
rebuilt from the history on every ask (tens of milliseconds at 1,000 trials), while
this works directly on the history's arrays, and BOHB feeds it rung results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.special import logsumexp
from scipy.stats import truncnorm

from app.engine.base import History, Sampler, Suggestion, unit_rng_seed
from app.engine.samplers import observations
from app.engine.samplers.observations import Encoding, Observations
from app.engine.space import FloatParam, ParamValue, SearchSpace

DEFAULT_STARTUP_TRIALS = 10
DEFAULT_CANDIDATES = 24
PRIOR_WEIGHT = 1.0
_SQRT2PI = math.log(math.sqrt(2 * math.pi))


def gamma(n: int) -> int:
    """How many of n results count as good (Optuna's default)."""
    return min(math.ceil(0.1 * n), 25)


class _Parzen:
    """A mixture of product kernels: truncated normals on [0, 1] and smoothed categoricals.

    Component 0 is a broad prior, so the density is never zero anywhere in the space."""

    def __init__(
        self,
        units: np.ndarray,
        indices: np.ndarray,
        sizes: Sequence[int],
        min_bandwidth: np.ndarray,
    ) -> None:
        n, dims = units.shape
        self.n = n
        # Optuna's multivariate bandwidth rule (Scott-like, scaled to the unit range).
        sigma = 0.2 * max(n, 1) ** (-1.0 / (dims + len(sizes) + 4))
        self.mus = np.vstack([np.full((1, dims), 0.5), units])
        self.sigmas = np.vstack(
            [np.ones((1, dims)), np.tile(np.maximum(sigma, min_bandwidth), (n, 1))]
        )
        self.weights = np.full(n + 1, 1.0)
        self.weights[0] = PRIOR_WEIGHT
        self.weights /= self.weights.sum()
        self.cat_probs: list[np.ndarray] = []
        for column, size in enumerate(sizes):
            probs = np.full((n + 1, size), PRIOR_WEIGHT / size)
            probs[np.arange(1, n + 1), indices[:, column]] += 1.0
            probs /= probs.sum(axis=1, keepdims=True)
            self.cat_probs.append(probs)
        low = (0.0 - self.mus) / self.sigmas
        high = (1.0 - self.mus) / self.sigmas
        self._low, self._high = low, high
        self._log_norm = np.log(np.maximum(_ndtr_diff(low, high), 1e-300))

    def sample(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        components = rng.choice(self.n + 1, size=count, p=self.weights)
        low, high = self._low[components], self._high[components]
        units = (
            truncnorm.rvs(
                low, high, loc=self.mus[components], scale=self.sigmas[components], random_state=rng
            )
            if low.size
            else np.zeros((count, 0))
        )
        units = np.asarray(units, dtype=float).reshape(count, self.mus.shape[1])
        indices = np.zeros((count, len(self.cat_probs)), dtype=int)
        for column, probs in enumerate(self.cat_probs):
            cumulative = np.cumsum(probs[components], axis=1)
            draws = rng.random(count)[:, None]
            indices[:, column] = np.minimum((draws > cumulative).sum(axis=1), probs.shape[1] - 1)
        return np.clip(units, 0.0, 1.0), indices

    def log_pdf(self, units: np.ndarray, indices: np.ndarray) -> np.ndarray:
        # (candidates, components, dims)
        z = (units[:, None, :] - self.mus[None, :, :]) / self.sigmas[None, :, :]
        per_dim = -0.5 * z**2 - _SQRT2PI - np.log(self.sigmas)[None] - self._log_norm[None]
        total = per_dim.sum(axis=2)
        for column, probs in enumerate(self.cat_probs):
            total = total + np.log(probs[:, indices[:, column]].T)
        return np.asarray(logsumexp(total + np.log(self.weights)[None, :], axis=1))


def _ndtr_diff(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(high) - ndtr(low))


def tpe_suggest(
    space: SearchSpace,
    observed: Observations,
    rng: np.random.Generator,
    candidates: int = DEFAULT_CANDIDATES,
    seen: Callable[[Mapping[str, ParamValue]], bool] = lambda config: False,
) -> dict[str, ParamValue]:
    """The candidate with the best l(x)/g(x) ratio. Pending configs join the bad group
    (the constant liar): parallel asks then move away from points already being run.

    The good group is the first `observed.n_good` (else gamma of their number); the rest
    may be a rank-stratified subsample of the bad results, which keeps g(x)'s shape.

    A candidate `seen` (already run) is passed over for the next best: on int and
    categorical spaces the density ratio keeps peaking on configs whose result is known,
    and re-running them learns nothing."""
    encoding = Encoding(space)
    n_good = observed.n_good or gamma(len(observed))
    good = observed.params[:n_good]
    bad: list[Mapping[str, ParamValue]] = [*observed.params[n_good:], *observed.pending]
    sizes = [len(p.choices) for p in encoding.categorical]
    min_bw = encoding.min_bandwidth()
    below = _Parzen(*encoding.encode(good), sizes, min_bw)
    above = _Parzen(*encoding.encode(bad), sizes, min_bw)
    units, indices = below.sample(rng, candidates)
    score = below.log_pdf(units, indices) - above.log_pdf(units, indices)
    # With a continuous parameter an exact repeat has probability zero: skip the check.
    discrete = all(not isinstance(p, FloatParam) or p.step is not None for p in space.params)
    if not discrete:
        seen = _never
    first: dict[str, ParamValue] | None = None
    for position in np.argsort(-score, kind="stable"):
        config = encoding.decode(units[position].tolist(), indices[position].tolist())
        if not seen(config):
            return config
        first = first or config
    # Every candidate was run before: a fresh config from l(x), or else from anywhere.
    for attempt in range(64):
        source = below if attempt < 32 else None
        if source is not None:
            u, i = source.sample(rng, 1)
            config = encoding.decode(u[0].tolist(), i[0].tolist())
        else:
            config = space.from_unit(rng.random(len(space.searchable)).tolist())
        if not seen(config):
            return config
    assert first is not None
    return first


def _never(config: Mapping[str, ParamValue]) -> bool:
    return False


class TPESampler(Sampler):
    """Options: `n_startup_trials` (10 random configs first), `n_ei_candidates` (24)."""

    name = "tpe"

    def suggest(self, history: History) -> Suggestion:
        space = self.context.space
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, history.count(), salt=17))
        startup = int(self.context.options.get("n_startup_trials", DEFAULT_STARTUP_TRIALS))
        index = history.index(self.context.direction)
        ranked = index.ranked()
        if len(ranked) < max(startup, 1) or not space.searchable:
            return Suggestion(params=space.from_unit(rng.random(len(space.searchable)).tolist()))
        n_good = gamma(len(ranked))
        positions = observations.subsample(len(ranked), n_good, observations.MAX_ABOVE)
        observed = observations.from_index(
            index, [ranked[p] for p in positions], n_good, len(ranked)
        )
        candidates = int(self.context.options.get("n_ei_candidates", DEFAULT_CANDIDATES))
        return Suggestion(
            params=tpe_suggest(space, observed, rng, candidates, seen=index.has_config)
        )
