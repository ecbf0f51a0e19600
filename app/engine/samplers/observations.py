"""What model-based samplers learn from: finished configs ranked by result, and pending ones.

A trial that reached the full budget outranks one a scheduler ended early, and among
those ended early a higher rung outranks a lower one (Optuna ranks pruned trials the
same way): a value measured after 3 epochs is not comparable with one after 27.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.engine.base import Direction, History, TrialState
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
