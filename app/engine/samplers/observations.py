"""What model-based samplers learn from: finished configs ranked by result, and pending ones.

A trial that reached the full budget outranks one a scheduler ended early, and among
those ended early a higher rung outranks a lower one (Optuna ranks pruned trials the
same way): a value measured after 3 epochs is not comparable with one after 27.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.engine import pareto
from app.engine.base import Direction, History, StudyContext, TrialRecord, TrialState
from app.engine.index import HistoryIndex
from app.engine.index import rank_key as rank_key
from app.engine.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    ParamValue,
    SearchSpace,
)

PENDING_STATES = (TrialState.RUNNING, TrialState.QUEUED)
# TPE's g(x) (the results outside the best gamma(n)) is a mixture with one kernel per
# result: at most this many stand for them, evenly spread over their ranks.
MAX_ABOVE = 200


@dataclass(frozen=True)
class Observations:
    """Finished configs sorted best first by `keys`, plus configs still being evaluated.

    They may be a subsample of the study's results: `n_good`, the size of the best group,
    is then counted over all `total` results, and the best group is always kept whole."""

    params: list[Mapping[str, ParamValue]]
    keys: list[tuple[float, float, float]]  # (tier, -rung, oriented value); smaller is better
    values: list[float]  # oriented values (smaller is better), finite
    numbers: list[int]  # trial numbers: later trials have larger ones
    pending: list[Mapping[str, ParamValue]]
    n_good: int = 0
    total: int = 0

    def __len__(self) -> int:
        return len(self.params)


def subsample(size: int, keep_first: int, spread: int) -> list[int]:
    """Positions: all of the first `keep_first`, then `spread` evenly spaced over the rest
    (the first and the last among them), or every position when that is no more."""
    if size <= keep_first + spread:
        return list(range(size))
    rest = size - keep_first
    if spread <= 1:
        return [*range(keep_first), keep_first][: keep_first + spread]
    picks = sorted({keep_first + i * (rest - 1) // (spread - 1) for i in range(spread)})
    return [*range(keep_first), *picks]


def from_index(
    index: HistoryIndex,
    ranked: Sequence[tuple[tuple[float, float, float], int, int]],
    n_good: int,
    total: int,
) -> Observations:
    """Observations of the trials in `ranked` ((key, number, id), best first), with the
    index's pending configs."""
    params = [index.records[trial_id].params for _, _, trial_id in ranked]
    return Observations(
        params=params,
        keys=[key for key, _, _ in ranked],
        values=[key[2] for key, _, _ in ranked],
        numbers=[number for _, number, _ in ranked],
        pending=[record.params for record in index.pending()],
        n_good=n_good,
        total=total,
    )


def from_history(history: History, direction: Direction, n_good: int = 0) -> Observations:
    """Every ranked result of the history, unsampled."""
    index = history.index(direction)
    ranked = index.ranked()
    return from_index(index, ranked, n_good, len(ranked))


def unit_column(param: Param, values: np.ndarray) -> np.ndarray:
    """`param.to_unit` over an array: the same formulas as app/engine/space.py, vectorized,
    because encoding 1,000 trials one value at a time costs more than the model."""
    if isinstance(param, IntParam):
        if param.high == param.low:
            return np.full(len(values), 0.5)
        if param.scale == "log":
            lo = math.log(param.low - 0.5 + 1e-9 if param.low > 0.5 else 0.5)
            hi = math.log(param.high + 0.5)
            u = (np.log(values) - lo) / (hi - lo)
        else:
            u = (values - param.low + 0.5 * param.step) / (param.size * param.step)
        return np.clip(u, 0.0, 1.0)
    if isinstance(param, FloatParam):
        low, high = param.low, param.high
        if param.scale == "log":
            start, end, at = math.log(low), math.log(high), np.log(values)
        elif param.scale == "reverse_log":
            start, end, at = math.log1p(-low), math.log1p(-high), np.log1p(-values)
        else:
            start, end, at = low, high, values
        if end == start:  # one point, or a range narrower than its scale resolves
            return np.full(len(values), 0.5)
        return np.clip((at - start) / (end - start), 0.0, 1.0)
    return np.full(len(values), 0.5)


@dataclass(frozen=True)
class Encoding:
    """Numeric parameters as unit coordinates, categoricals as choice indices."""

    space: SearchSpace

    @property
    def numeric(self) -> list[Param]:
        return [p for p in self.space.searchable if not isinstance(p, CategoricalParam)]

    @property
    def categorical(self) -> list[CategoricalParam]:
        return [p for p in self.space.searchable if isinstance(p, CategoricalParam)]

    def encode(self, configs: Sequence[Mapping[str, ParamValue]]) -> tuple[np.ndarray, np.ndarray]:
        numeric, categorical = self.numeric, self.categorical
        units = np.empty((len(configs), len(numeric)), dtype=np.float64)
        for column, param in enumerate(numeric):
            values = np.fromiter(
                (c[param.name] for c in configs), dtype=np.float64, count=len(configs)
            )
            units[:, column] = unit_column(param, values)
        indices = np.array(
            [[p.index(c[p.name]) for p in categorical] for c in configs], dtype=int
        ).reshape(len(configs), len(categorical))
        return units, indices

    def decode(self, units: Sequence[float], indices: Sequence[int]) -> dict[str, ParamValue]:
        numeric = iter(units)
        chosen = iter(indices)
        config: dict[str, ParamValue] = {}
        for param in self.space.params:
            if isinstance(param, CategoricalParam):
                config[param.name] = param.choices[int(next(chosen))]
            elif param in self.numeric:
                config[param.name] = param.from_unit(float(next(numeric)))
            else:
                config[param.name] = param.from_unit(0.5)
        return config

    def min_bandwidth(self) -> np.ndarray:
        """Integer and stepped parameters need kernels at least one value wide."""
        widths = []
        for param in self.numeric:
            size = getattr(param, "size", None)
            step = getattr(param, "step", None)
            if size is None and step is not None and param.high > param.low:  # type: ignore[union-attr]
                size = int((param.high - param.low) / step) + 1  # type: ignore[union-attr]
            widths.append(0.5 / size if size else 1e-3)
        return np.asarray(widths, dtype=np.float64)


# Several objectives and constraints (owner of this ordering: app/engine/pareto.py) ------


def result_vector(record: TrialRecord, objectives: int) -> tuple[float, ...] | None:
    """The trial's objective values as reported, or None when one is missing or not finite."""
    values = record.values
    if values is None or len(values) != objectives:
        values = (record.value,) if objectives == 1 and record.value is not None else None
    if values is None or not all(math.isfinite(v) for v in values):
        return None
    return tuple(values)


def multi_objective(
    history: History, context: StudyContext, n_good: Callable[[int], int]
) -> Observations:
    """Every result ordered best first for several objectives and/or constraints, as
    Optuna's MOTPE and constrained TPE split them: within each tier (full-budget results
    first, then by rung, as `rank_key`), feasible trials by non-dominated rank, the front
    that straddles the split by hypervolume contribution, the rest of a front by crowding
    distance; then infeasible trials by total violation. `n_good(total)` sizes the best
    group (TPE's gamma), counted over every result. Pending configs are the history's
    queued and running ones (the constant liar puts them in the bad group)."""
    directions = context.directions
    index = history.index(context.direction)
    tiers: dict[tuple[float, float], list[TrialRecord]] = {}
    for record in index.records.values():
        key = rank_key(record, context.direction)
        if key is None or result_vector(record, len(directions)) is None:
            continue
        tiers.setdefault((key[0], key[1]), []).append(record)
    total = sum(len(group) for group in tiers.values())
    good = min(n_good(total), total) if total else 0
    ordered: list[tuple[TrialRecord, float]] = []
    for tier in sorted(tiers):
        group = sorted(tiers[tier], key=lambda r: r.number)
        vectors = [result_vector(r, len(directions)) for r in group]
        points = pareto.oriented_matrix(vectors, directions)  # type: ignore[arg-type]
        totals = [pareto.total_violation(context.constraints, r.constraint_values) for r in group]
        wanted = max(good - len(ordered), 0)
        order = pareto.constrained_order(points, totals, n_first=wanted, limit=wanted)
        ordered.extend((group[int(i)], tier[0]) for i in order)
    return Observations(
        params=[r.params for r, _ in ordered],
        keys=[
            (tier, float(position), pareto.orient([r.value or 0.0], directions[:1])[0])
            for position, (r, tier) in enumerate(ordered)
        ],
        values=[pareto.orient([r.value or 0.0], directions[:1])[0] for r, _ in ordered],
        numbers=[r.number for r, _ in ordered],
        pending=[record.params for record in index.pending()],
        n_good=good,
        total=total,
    )
