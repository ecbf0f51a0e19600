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

from app.engine.base import Direction, History, TrialRecord, TrialState, oriented
from app.engine.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    ParamValue,
    SearchSpace,
)

PENDING_STATES = (TrialState.RUNNING, TrialState.QUEUED)


@dataclass(frozen=True)
class Observations:
    """Finished configs sorted best first by `keys`, plus configs still being evaluated."""

    params: list[Mapping[str, ParamValue]]
    keys: list[tuple[float, float, float]]  # (tier, -rung, oriented value); smaller is better
    values: list[float]  # oriented values (smaller is better), finite
    numbers: list[int]  # trial numbers: later trials have larger ones
    pending: list[Mapping[str, ParamValue]]

    def __len__(self) -> int:
        return len(self.params)


def rank_key(trial: TrialRecord, direction: Direction) -> tuple[float, float, float] | None:
    if trial.value is None or not math.isfinite(trial.value):
        return None
    if trial.state == TrialState.COMPLETED:
        tier = 0.0
    elif trial.state in (TrialState.STOPPED, TrialState.PAUSED):
        tier = 1.0
    else:
        return None
    return (tier, -float(trial.rung), oriented(trial.value, direction))


def from_history(history: History, direction: Direction) -> Observations:
    ranked: list[tuple[tuple[float, float, float], int, Mapping[str, ParamValue]]] = []
    pending: list[Mapping[str, ParamValue]] = []
    for trial in history.trials():
        if trial.state in PENDING_STATES:
            pending.append(trial.params)
            continue
        key = rank_key(trial, direction)
        if key is not None:
            ranked.append((key, trial.number, trial.params))
    return from_ranked(ranked, pending)


def from_ranked(
    ranked: list[tuple[tuple[float, float, float], int, Mapping[str, ParamValue]]],
    pending: list[Mapping[str, ParamValue]],
) -> Observations:
    # The trial number breaks ties so that the order never depends on dict or DB order.
    ranked.sort(key=lambda item: (item[0], item[1]))
    return Observations(
        params=[p for _, _, p in ranked],
        keys=[k for k, _, _ in ranked],
        values=[k[2] for k, _, _ in ranked],
        numbers=[n for _, n, _ in ranked],
        pending=pending,
    )


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
