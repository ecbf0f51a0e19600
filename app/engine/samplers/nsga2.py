"""An NSGA-II-style evolutionary sampler (Deb et al. 2002), steady state and stateless.

Each ask rebuilds the population from the history: the `population_size` best finished
results by NSGA-II's order (feasible first by non-dominated rank and crowding distance,
then infeasible by total violation: Deb's constrained domination), so no generation is
kept anywhere and any API process can breed the next child. Two parents are picked by
binary tournament on that order; numeric parameters cross over by simulated binary
crossover (SBX, eta 15) and mutate by polynomial mutation (eta 20) in the unit cube,
categoricals take either parent's choice and mutate to a random one.

Running trials: the first `population_size` asks (running ones included) are random, so
a parallel start does not wait for results; afterwards a child identical to a config
already run or running is bred again (up to a few times), so parallel asks spread out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from app.engine import pareto
from app.engine.base import History, Sampler, Suggestion, TrialRecord, unit_rng_seed
from app.engine.index import rank_key
from app.engine.options import Options
from app.engine.samplers.observations import result_vector
from app.engine.space import CategoricalParam, ParamValue

DEFAULT_POPULATION = 20
SBX_ETA = 15.0
MUTATION_ETA = 20.0
CROSSOVER_PROB = 0.9
RETRIES = 8


class NSGA2Options(Options):
    population_size: int = Field(default=DEFAULT_POPULATION, ge=2, le=10_000)
    crossover_prob: float = Field(default=CROSSOVER_PROB, ge=0, le=1)
    mutation_prob: float | None = Field(
        default=None, ge=0, le=1, description="None: 1 / number of searchable parameters."
    )


class NSGA2Sampler(Sampler):
    name = "nsga2"

    def suggest(self, history: History) -> Suggestion:
        space = self.context.space
        searchable = space.searchable
        number = history.count()
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, number, salt=29))
        size = int(self.context.options.get("population_size", DEFAULT_POPULATION))
        population = self._population(history, size)
        if number < size or len(population) < 2 or not searchable:
            return Suggestion(params=space.from_unit(rng.random(len(searchable)).tolist()))
        index = history.index(self.context.direction)
        units = np.array([space.to_unit(r.params, missing=0.5) for r in population])
        mutation = self.context.options.get("mutation_prob")
        p_mut = float(mutation) if mutation is not None else 1.0 / len(searchable)
        p_cross = float(self.context.options.get("crossover_prob", CROSSOVER_PROB))
        child: Mapping[str, ParamValue] = {}
        for _ in range(RETRIES):
            first, second = _tournament(rng, len(population)), _tournament(rng, len(population))
            point = _breed(rng, units[first], units[second], searchable, p_cross, p_mut)
            child = space.from_unit(point.tolist())
            if not index.has_config(child):
                break
        return Suggestion(params=child)

    def _population(self, history: History, size: int) -> list[TrialRecord]:
        """The best `size` finished results, best first (position = tournament rank)."""
        directions = self.context.directions
        index = history.index(self.context.direction)
        results = [
            r
            for r in sorted(index.records.values(), key=lambda r: r.number)
            if rank_key(r, self.context.direction) is not None
            and result_vector(r, len(directions)) is not None
        ]
        if not results:
            return []
        points = pareto.oriented_matrix(
            [result_vector(r, len(directions)) for r in results],  # type: ignore[misc]
            directions,
        )
        totals = [
            pareto.total_violation(self.context.constraints, r.constraint_values) for r in results
        ]
        order = pareto.constrained_order(points, totals, limit=size)
        return [results[int(i)] for i in order[:size]]


def _tournament(rng: np.random.Generator, size: int) -> int:
    """Binary tournament on the population's order (lower position = better rank, then
    larger crowding distance), which is what NSGA-II's crowded comparison decides."""
    a, b = rng.integers(0, size, 2)
    return int(min(a, b))


def _breed(
    rng: np.random.Generator,
    left: np.ndarray,
    right: np.ndarray,
    params: Sequence[Any],
    p_cross: float,
    p_mut: float,
) -> np.ndarray:
    child = left.copy()
    cross = rng.random() < p_cross
    for d, param in enumerate(params):
        if isinstance(param, CategoricalParam):
            if cross and rng.random() < 0.5:
                child[d] = right[d]
            if rng.random() < p_mut:
                child[d] = (rng.integers(len(param.choices)) + 0.5) / len(param.choices)
            continue
        if cross and rng.random() < 0.5:
            child[d] = _sbx(rng, left[d], right[d])
        if rng.random() < p_mut:
            child[d] = _polynomial(rng, child[d])
    return np.clip(child, 0.0, 1.0)


def _sbx(rng: np.random.Generator, a: float, b: float) -> float:
    """One child of simulated binary crossover, bounded to [0, 1] (Deb & Agrawal 1995)."""
    if abs(a - b) < 1e-14:
        return a
    low, high = min(a, b), max(a, b)
    u = rng.random()
    beta = 1.0 + 2.0 * min(low, 1.0 - high) / (high - low)
    alpha = 2.0 - beta ** -(SBX_ETA + 1.0)
    if u <= 1.0 / alpha:
        betaq = (u * alpha) ** (1.0 / (SBX_ETA + 1.0))
    else:
        betaq = (1.0 / (2.0 - u * alpha)) ** (1.0 / (SBX_ETA + 1.0))
    mid, half = 0.5 * (low + high), 0.5 * (high - low)
    value = mid - betaq * half if rng.random() < 0.5 else mid + betaq * half
    return float(min(1.0, max(0.0, value)))


def _polynomial(rng: np.random.Generator, x: float) -> float:
    """Polynomial mutation in [0, 1] (Deb & Goyal 1996)."""
    u = rng.random()
    power = 1.0 / (MUTATION_ETA + 1.0)
    if u < 0.5:
        xy = 1.0 - x
        val = 2.0 * u + (1.0 - 2.0 * u) * xy ** (MUTATION_ETA + 1.0)
        delta = val**power - 1.0
    else:
        xy = x
        val = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * xy ** (MUTATION_ETA + 1.0)
        delta = 1.0 - val**power
    return float(min(1.0, max(0.0, x + delta)))
