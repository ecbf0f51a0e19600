"""Tree-structured Parzen Estimator, multivariate, in the space's unit coordinates.

Follows Optuna's TPESampler (4.x/5.x defaults: multivariate, constant liar): the best
gamma(n) results form l(x), the rest g(x); candidates drawn from l(x) are scored by
log l(x) - log g(x). Each kernel's bandwidth in a dimension is the distance to its
neighbours there (clipped from below by the "magic clip"), integers and stepped values
get the probability mass of their bin, categoricals a kernel smoothed towards uniform.
Beyond Optuna (measured in docs/benchmarks.md, "TPE and priors"): l(x)'s kernels are
also weighted by rank, half the candidates recombine l(x)'s marginals, and 48 candidates
are scored rather than 24. It is re-implemented here rather than wrapped because an Optuna study would have to be
rebuilt from the history on every ask (tens of milliseconds at 1,000 trials), while
this works directly on the history's arrays, and BOHB feeds it rung results.

Conditional spaces: a parameter missing from a config is inactive there. Its kernel in
that dimension is uniform (it says nothing about the parameter), and a candidate is
scored only on the parameters active in it.

Priors (app/engine/priors.py): as piBO (Hvarfner et al., 2022), the acquisition is
weighted by prior(x) ** (beta / n), and part of the candidates and of the start-up
configs come from the prior; the weight decays with the number of results n, so the
data overrule a wrong belief.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

from app.engine import priors
from app.engine.base import History, Sampler, Suggestion, unit_rng_seed
from app.engine.options import DEFAULT_EI_CANDIDATES, DEFAULT_PRIOR_BETA
from app.engine.samplers import observations
from app.engine.samplers.observations import Observations, unit_column
from app.engine.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    ParamValue,
    SearchSpace,
)

DEFAULT_STARTUP_TRIALS = 10
DEFAULT_CANDIDATES = DEFAULT_EI_CANDIDATES
PRIOR_WEIGHT = 1.0
# l(x)'s kernels are also weighted by rank: the i-th best of the group (0-based) by
# exp(-RANK_DECAY * i / (group - 1)), so candidates come mostly from the very best results
# (Optuna weighs its 5th best like its best).
RANK_DECAY = 1.5
# This share of the candidates takes each dimension from an independently drawn kernel
# of l(x) (its marginals' product): good coordinates of different results recombine,
# which partly separable functions reward; the joint ratio still scores every candidate.
MARGINAL_SHARE = 0.5
# piBO's beta: the prior's exponent is PRIOR_BETA / n after n results (0.5 at n = 10).
PRIOR_BETA = DEFAULT_PRIOR_BETA
# The acquisition's prior is the belief mixed with this share of the uniform density, so
# that it never falls below the share anywhere: a wrong, confident belief (a narrow
# normal far from the optimum) would otherwise outweigh tens of results.
PRIOR_UNIFORM_SHARE = 0.1
_LOG_SQRT2PI = math.log(math.sqrt(2 * math.pi))
_LOG_FLOOR = -1e3  # log of a mass too small to matter (keeps -inf out of the sums)


def gamma(n: int) -> int:
    """How many of n results count as good (Optuna's default)."""
    return min(math.ceil(0.1 * n), 25)


def default_weights(n: int) -> np.ndarray:
    """Kernel weights, oldest result first (Optuna's default): equal up to 25 results,
    beyond that the older ones ramp down from 1/n, so a long study follows where the
    search is now."""
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


def _log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, accurate in both tails."""
    # Reflect intervals in the upper tail to the lower one, where log_ndtr is accurate;
    # then Phi(b) - Phi(a) = Phi(b) (1 - Phi(a) / Phi(b)) loses nothing to cancellation.
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = log_ndtr(hi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = log_hi + np.log1p(-np.exp(log_ndtr(lo) - log_hi))
    # fmax also replaces the NaN of an interval beyond both tails' reach.
    return np.fmax(out, _LOG_FLOOR)


def _log_bin_mass(
    left: np.ndarray, right: np.ndarray, mus: np.ndarray, inv_sigmas: np.ndarray
) -> np.ndarray:
    """log of a normal's mass over [left, right], broadcast over candidates and kernels.

    A bin narrower than a quarter of the kernel's width takes the midpoint rule with its
    second-order term, log(phi(z) h (1 + (z^2 - 1) h^2 / 24)), whose error is below
    h^4 z^4 / 1920 (1e-3 at z = 5): the exact difference of two log-CDFs costs several
    times more and is only needed for kernels narrower than their bins."""
    h = (right - left) * inv_sigmas
    z = ((left + right) * 0.5 - mus) * inv_sigmas
    h, z = np.broadcast_arrays(h, z)
    # Wide bins' entries are replaced below; their log1p may be undefined meanwhile.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -0.5 * z * z - _LOG_SQRT2PI + np.log(h) + np.log1p((z * z - 1) * h * h / 24)
    wide = h >= 0.25
    if wide.any():
        a, b = z[wide] - 0.5 * h[wide], z[wide] + 0.5 * h[wide]
        out[wide] = _log_mass(a, b)
    return np.fmax(out, _LOG_FLOOR)


class Columns:
    """How the space's searchable parameters are laid out for the estimator: numeric
    ones as unit coordinates (NaN where inactive), categoricals as choice indices (-1
    where inactive), and for each numeric column its bins (0 when continuous)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.searchable = space.searchable
        self.numeric: list[Param] = [
            p for p in self.searchable if not isinstance(p, CategoricalParam)
        ]
        self.categorical: list[CategoricalParam] = [
            p for p in self.searchable if isinstance(p, CategoricalParam)
        ]
        self.sizes = [len(p.choices) for p in self.categorical]
        self.bins = np.array([_bin_count(p) for p in self.numeric], dtype=float)
        position = {p.name: k for k, p in enumerate(self.searchable)}
        self.numeric_at = [position[p.name] for p in self.numeric]
        self.categorical_at = [position[p.name] for p in self.categorical]

    def encode(self, configs: Sequence[Mapping[str, ParamValue]]) -> tuple[np.ndarray, np.ndarray]:
        n = len(configs)
        conditional = self.space.conditional
        units = np.empty((n, len(self.numeric)), dtype=np.float64)
        for column, param in enumerate(self.numeric):
            name = param.name
            if not conditional:
                values = np.fromiter((c[name] for c in configs), dtype=np.float64, count=n)
                units[:, column] = unit_column(param, values)
                continue
            values = np.fromiter(
                (c.get(name, math.nan) for c in configs), dtype=np.float64, count=n
            )
            missing = np.isnan(values)
            units[:, column] = unit_column(param, np.where(missing, param.low, values))  # type: ignore[union-attr]
            units[missing, column] = math.nan
        indices = np.empty((n, len(self.categorical)), dtype=int)
        for column, cat in enumerate(self.categorical):
            # Keyed by type too: a categorical may offer 1, 1.0 and True, which are equal.
            lookup = {(type(c), c): k for k, c in enumerate(cat.choices)}
            name = cat.name
            indices[:, column] = [
                lookup.get((type(c[name]), c[name]), -2) if name in c else -1 for c in configs
            ]
            unmatched = np.flatnonzero(indices[:, column] == -2)
            for row in unmatched:  # a value equal to a choice of another type (1 for 1.0)
                indices[row, column] = cat.index(configs[int(row)][name])
        return units, indices

    def decode(self, units: np.ndarray, indices: np.ndarray) -> dict[str, ParamValue]:
        point = np.empty(len(self.searchable))
        point[self.numeric_at] = units
        point[self.categorical_at] = (np.asarray(indices) + 0.5) / np.asarray(self.sizes)
        return self.space.from_unit(point.tolist())

    def snap(self, units: np.ndarray) -> np.ndarray:
        """Discrete coordinates moved to the unit coordinate of the value they decode to,
        so that a candidate is scored where it will run."""
        out = units.copy()
        for column, param in enumerate(self.numeric):
            if isinstance(param, IntParam) and param.scale == "linear" and param.size > 1:
                # IntParam.from_unit then to_unit, vectorized (both round half to even).
                count = np.clip(np.round(units[:, column] * param.size - 0.5), 0, param.size - 1)
                out[:, column] = (count + 0.5) / param.size
            elif self.bins[column]:
                out[:, column] = unit_column(
                    param,
                    np.array([param.from_unit(float(u)) for u in units[:, column]], dtype=float),
                )
        return out


def _bin_count(param: Param) -> float:
    """Number of values of a discrete parameter (0 when continuous)."""
    if isinstance(param, IntParam):
        return float(param.size) if param.size > 1 else 0.0
    if isinstance(param, FloatParam) and param.step is not None and param.high > param.low:
        return float(math.floor((param.high - param.low) / param.step + 1e-9) + 1)
    return 0.0


def _neighbour_sigmas(values: np.ndarray, n_kernels: int) -> np.ndarray:
    """Optuna's bandwidths: each kernel's larger distance to its neighbours (the range's
    ends count as neighbours, except for the outermost kernels), clipped to
    [1 / min(100, 1 + n_kernels), 1]."""
    order = np.argsort(values)
    ordered = np.concatenate([[0.0], values[order], [1.0]])
    sigmas = np.maximum(ordered[1:-1] - ordered[:-2], ordered[2:] - ordered[1:-1])
    if len(ordered) >= 4:
        sigmas[0] = ordered[2] - ordered[1]
        sigmas[-1] = ordered[-2] - ordered[-3]
    out = np.empty_like(sigmas)
    out[order] = sigmas
    return np.clip(out, 1.0 / min(100.0, 1.0 + n_kernels), 1.0)


class _Parzen:
    """A weighted mixture of product kernels plus a broad prior component (the last).

    Numeric dimensions: normals truncated to [0, 1], scored by their density, or by the
    mass of the value's bin when the parameter is discrete. Categoricals: each kernel
    puts 1 on its choice and prior_weight / n_kernels on every choice. A kernel whose
    result lacks the parameter is uniform in that dimension."""

    def __init__(
        self,
        units: np.ndarray,
        indices: np.ndarray,
        weights: np.ndarray,
        columns: Columns,
    ) -> None:
        n, dims = units.shape
        self.n = n
        self.bins = columns.bins
        n_kernels = n + 1
        self.mus = np.full((n_kernels, dims), 0.5)
        self.sigmas = np.ones((n_kernels, dims))
        self.active = np.ones((n_kernels, dims), dtype=bool)
        for column in range(dims):
            values = units[:, column]
            active = ~np.isnan(values)
            self.active[:n, column] = active
            if active.any():
                self.mus[:n, column][active] = values[active]
                self.sigmas[:n, column][active] = _neighbour_sigmas(
                    values[active], int(active.sum()) + 1
                )
        mixture = np.append(np.asarray(weights, dtype=float), PRIOR_WEIGHT)
        self.weights = mixture / mixture.sum()
        self.log_weights = np.log(self.weights)
        self._a = (0.0 - self.mus) / self.sigmas
        self._b = (1.0 - self.mus) / self.sigmas
        self._log_norm = _log_mass(self._a, self._b)
        self._inv_sigmas = 1.0 / self.sigmas
        self._log_const = -_LOG_SQRT2PI - np.log(self.sigmas) - self._log_norm
        self._continuous = np.flatnonzero(self.bins == 0)
        self._discrete = np.flatnonzero(self.bins > 0)
        self.cat_probs: list[np.ndarray] = []
        self.cat_active: list[np.ndarray] = []
        for column, size in enumerate(columns.sizes):
            chosen = indices[:, column]
            active = np.append(chosen >= 0, True)
            probs = np.full((n_kernels, size), PRIOR_WEIGHT / n_kernels)
            rows = np.flatnonzero(chosen >= 0)
            probs[rows, chosen[rows]] += 1.0
            probs[~active] = 1.0  # inactive: uniform
            probs /= probs.sum(axis=1, keepdims=True)
            self.cat_probs.append(probs)
            self.cat_active.append(active)
        self._log_cat = [np.log(probs) for probs in self.cat_probs]
        self._all_active = bool(self.active.all())

    def sample(
        self, rng: np.random.Generator, count: int, mixed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`count` draws from the mixture; the last `mixed` of them pick a kernel per
        dimension (from the product of l(x)'s marginals) rather than one per draw."""
        dims = self.mus.shape[1]
        columns = len(self.cat_probs)
        components = np.repeat(
            rng.choice(self.n + 1, size=count, p=self.weights)[:, None], dims + columns, axis=1
        )
        if mixed:
            components[count - mixed :] = rng.choice(
                self.n + 1, size=(mixed, dims + columns), p=self.weights
            )
        numeric = components[:, :dims]
        at = np.arange(dims)[None, :]
        mus, sigmas = self.mus[numeric, at], self.sigmas[numeric, at]
        # Inverse CDF of each truncated normal: every kernel's centre lies in [0, 1], so
        # the interval always holds the centre and the CDF values stay well apart.
        lo, hi = ndtr(self._a[numeric, at]), ndtr(self._b[numeric, at])
        q = lo + rng.random(lo.shape) * (hi - lo)
        units = mus + sigmas * ndtri(np.clip(q, 1e-300, 1 - 1e-16))
        uniform = ~self.active[numeric, at]
        if uniform.any():
            units[uniform] = rng.random(int(uniform.sum()))
        indices = np.zeros((count, columns), dtype=int)
        for column, probs in enumerate(self.cat_probs):
            cumulative = np.cumsum(probs[components[:, dims + column]], axis=1)
            draws = rng.random(count)[:, None]
            indices[:, column] = np.minimum((draws > cumulative).sum(axis=1), probs.shape[1] - 1)
        return np.clip(units, 0.0, 1.0), indices

    def log_pdf(self, units: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Log density of candidates; NaN coordinates and -1 indices (inactive in the
        candidate) are left out, alike for every kernel."""
        cand_active = ~np.isnan(units)
        # Without conditions every kernel and candidate is active: no masks to apply.
        masked = not (self._all_active and cand_active.all())
        u = np.where(cand_active, units, 0.5) if masked else units
        total = np.zeros((len(units), self.n + 1))
        cont, disc = self._continuous, self._discrete
        if cont.size:
            z = (u[:, None, cont] - self.mus[None, :, cont]) * self._inv_sigmas[None, :, cont]
            per_dim = -0.5 * z * z + self._log_const[None, :, cont]
            if masked:
                # A kernel inactive in a dimension is uniform there: density 1.
                per_dim = np.where(self.active[None, :, cont], per_dim, 0.0)
                per_dim = np.where(cand_active[:, None, cont], per_dim, 0.0)
            total += per_dim.sum(axis=2)
        if disc.size:
            half = 0.5 / self.bins[disc]
            left = np.clip(u[:, disc] - half, 0.0, 1.0)[:, None, :]
            right = np.clip(u[:, disc] + half, 0.0, 1.0)[:, None, :]
            mus, inv = self.mus[None, :, disc], self._inv_sigmas[None, :, disc]
            per_dim = _log_bin_mass(left, right, mus, inv) - self._log_norm[None, :, disc]
            if masked:
                # A uniform kernel gives a bin its width.
                width = np.log(np.maximum(right - left, 1e-12))
                per_dim = np.where(self.active[None, :, disc], per_dim, width)
                per_dim = np.where(cand_active[:, None, disc], per_dim, 0.0)
            total += per_dim.sum(axis=2)
        for column, log_probs in enumerate(self._log_cat):
            chosen = indices[:, column]
            present = chosen >= 0
            picked = log_probs[:, np.maximum(chosen, 0)].T
            total += np.where(present[:, None], picked, 0.0)
        weighted = total + self.log_weights[None, :]
        peak = weighted.max(axis=1, keepdims=True)
        return np.asarray(peak[:, 0] + np.log(np.exp(weighted - peak).sum(axis=1)))


def _ordered_weights(numbers: Sequence[int]) -> np.ndarray:
    """default_weights applied in trial-number order (oldest first)."""
    order = np.argsort(np.asarray(numbers), kind="stable")
    weights = np.empty(len(numbers))
    weights[order] = default_weights(len(numbers))
    return weights


def tpe_suggest(
    space: SearchSpace,
    observed: Observations,
    rng: np.random.Generator,
    candidates: int = DEFAULT_CANDIDATES,
    seen: Callable[[Mapping[str, ParamValue]], bool] = lambda config: False,
    prior_exponent: float = 0.0,
) -> dict[str, ParamValue]:
    """The candidate with the best l(x)/g(x) ratio (times prior(x) ** prior_exponent).
    Pending configs join the bad group (the constant liar): parallel asks then move away
    from points already being run.

    The good group is the first `observed.n_good` (else gamma of their number); the rest
    may be a rank-stratified subsample of the bad results, which keeps g(x)'s shape.

    A candidate `seen` (already run) is passed over for the next best: on int and
    categorical spaces the density ratio keeps peaking on configs whose result is known,
    and re-running them learns nothing."""
    columns = Columns(space)
    n_good = observed.n_good or gamma(len(observed))
    good = observed.params[:n_good]
    bad: list[Mapping[str, ParamValue]] = [*observed.params[n_good:], *observed.pending]
    numbers = list(observed.numbers) if len(observed.numbers) == len(observed.params) else []
    if numbers:
        newest = max(numbers) + 1
        good_weights = _ordered_weights(numbers[:n_good])
        good_weights = good_weights * np.exp(-RANK_DECAY * np.arange(n_good) / max(n_good - 1, 1))
        # Pending trials are the newest of all (Optuna sorts running trials by number too).
        bad_numbers = [*numbers[n_good:], *range(newest, newest + len(observed.pending))]
        bad_weights = _ordered_weights(bad_numbers)
    else:
        good_weights, bad_weights = np.ones(len(good)), np.ones(len(bad))
    below = _Parzen(*columns.encode(good), good_weights, columns)
    above = _Parzen(*columns.encode(bad), bad_weights, columns)

    units, indices = below.sample(rng, candidates, int(MARGINAL_SHARE * candidates))
    if prior_exponent > 0 and priors.has_prior(space):
        # piBO samples where prior(x) ** exponent is large: some candidates from the prior.
        extra = max(1, round(candidates * min(1.0, prior_exponent)))
        from_prior = priors.sample_units(space, rng, extra)
        units = np.vstack([units, from_prior[:, columns.numeric_at]])
        sizes = np.asarray(columns.sizes, dtype=float)
        cat_units = from_prior[:, columns.categorical_at]
        indices = np.vstack([indices, np.minimum(sizes - 1, cat_units * sizes).astype(int)])
    units = columns.snap(units)
    # Candidates become configs up front only where that changes their score (which
    # parameters are active) or the choice (already-run configs are passed over).
    discrete = all(not isinstance(p, FloatParam) or p.step is not None for p in space.params)
    configs: list[dict[str, ParamValue] | None] = [None] * len(units)
    if space.conditional or discrete:
        configs = [columns.decode(units[k], indices[k]) for k in range(len(units))]
    if space.conditional:
        # Score each candidate on its active parameters only.
        for k, config in enumerate(configs):
            assert config is not None
            for column, param in enumerate(columns.numeric):
                if param.name not in config:
                    units[k, column] = math.nan
            for column, cat in enumerate(columns.categorical):
                if cat.name not in config:
                    indices[k, column] = -1
    score = below.log_pdf(units, indices) - above.log_pdf(units, indices)
    if prior_exponent > 0:
        full = np.empty((len(units), len(columns.searchable)))
        full[:, columns.numeric_at] = units
        sizes = np.asarray(columns.sizes, dtype=float)
        full[:, columns.categorical_at] = np.where(
            indices >= 0, (indices + 0.5) / np.maximum(sizes, 1.0), math.nan
        )
        score = score + prior_exponent * priors.prior_log_pdf(space, full, PRIOR_UNIFORM_SHARE)
    best = int(np.argmax(score))
    if not discrete:
        # With a continuous parameter an exact repeat has probability zero: no check.
        return configs[best] or columns.decode(units[best], indices[best])
    for position in np.argsort(-score, kind="stable"):
        config = configs[position]
        assert config is not None
        if not seen(config):
            return config
    # Every candidate was run before: a fresh config from l(x), or else from anywhere.
    for attempt in range(64):
        if attempt < 32:
            u, i = below.sample(rng, 1)
            config = columns.decode(columns.snap(u)[0], i[0])
        else:
            config = space.from_unit(rng.random(len(space.searchable)).tolist())
        if not seen(config):
            return config
    return configs[best] or columns.decode(units[best], indices[best])


def prior_exponent(results: int, beta: float = PRIOR_BETA) -> float:
    """piBO's beta / n: the prior's weight after `results` results."""
    return beta / max(results, 1)


def startup_config(
    space: SearchSpace,
    rng: np.random.Generator,
    trial_count: int,
    mode_first: bool = True,
    from_prior: bool = True,
) -> dict[str, ParamValue]:
    """A start-up config: uniform, or with a prior, the prior's own values first (as
    PriorBand starts from the default config), then from the prior on every other trial
    (piBO's initial design is drawn from the prior; the uniform half keeps a wrong prior
    from filling the whole start-up with configs from one corner)."""
    if priors.has_prior(space):
        if trial_count == 0 and mode_first:
            return priors.prior_mode(space, rng)
        if from_prior and trial_count % 2 == 0:
            return priors.sample_from_prior(space, rng)
    return space.from_unit(rng.random(len(space.searchable)).tolist())


class TPESampler(Sampler):
    """Options: `n_startup_trials` (10 random configs first), `n_ei_candidates` (48),
    `prior_beta` (5: the prior's weight is prior_beta / n after n results),
    `prior_mode_first` (true: with priors, the first trial runs the priors' values)."""

    name = "tpe"

    def suggest(self, history: History) -> Suggestion:
        space = self.context.space
        count = history.count()
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, count, salt=17))
        startup = int(self.context.options.get("n_startup_trials", DEFAULT_STARTUP_TRIALS))
        index = history.index(self.context.direction)
        ranked = index.ranked()
        if len(ranked) < max(startup, 1) or not space.searchable:
            mode_first = bool(self.context.options.get("prior_mode_first", True))
            return Suggestion(params=startup_config(space, rng, count, mode_first))
        n_good = gamma(len(ranked))
        positions = observations.subsample(len(ranked), n_good, observations.MAX_ABOVE)
        observed = observations.from_index(
            index, [ranked[p] for p in positions], n_good, len(ranked)
        )
        candidates = int(self.context.options.get("n_ei_candidates", DEFAULT_CANDIDATES))
        beta = float(self.context.options.get("prior_beta", PRIOR_BETA))
        exponent = prior_exponent(len(ranked), beta) if priors.has_prior(space) else 0.0
        return Suggestion(
            params=tpe_suggest(
                space, observed, rng, candidates, seen=index.has_config, prior_exponent=exponent
            )
        )
