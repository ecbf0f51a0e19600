"""Parameter importance: permutation importance of a random forest fitted to the trials.

A forest regresses the objective on the parameters (log-scaled ones in log space,
categories as codes); shuffling one parameter's column and measuring how much the
forest's R^2 drops says how much the objective depends on it (Breiman 2001; scikit-learn
`permutation_importance`). Scores are normalized to sum to one. Without enough trials
or variation the result is empty. (A dedicated `app/importance/` may replace this.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.plots.repository import TrialRow

METHOD = "permutation importance (random forest)"
MIN_TRIALS = 8
MAX_ROWS = 1000


def _encode(spec: Mapping[str, Any], value: Any, codes: dict[str, int]) -> float:
    if spec.get("type") == "categorical" or isinstance(value, str | bool):
        return float(codes.setdefault(repr(value), len(codes)))
    number = float(value)
    if spec.get("scale") in ("log", "reverse_log") and number > 0:
        return math.log10(number)
    return number


def importances(
    trials: Sequence[TrialRow], space: Mapping[str, Any], seed: int = 0
) -> dict[str, float]:
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    rows = [
        t
        for t in trials
        if t.state in ("completed", "stopped")
        and t.value is not None
        and math.isfinite(t.value)
        and all(t.params.get(n) is not None for n in names)
    ]
    if len(rows) < MIN_TRIALS or not names:
        return {}
    rng = np.random.default_rng(seed)
    if len(rows) > MAX_ROWS:  # the forest's cost grows with rows; a sample ranks as well
        rows = [rows[i] for i in sorted(rng.choice(len(rows), MAX_ROWS, replace=False))]
    codes: dict[str, dict[str, int]] = {n: {} for n in names}
    x = np.array([[_encode(space[n], t.params[n], codes[n]) for n in names] for t in rows])
    y = np.array([t.value for t in rows], dtype=float)
    varying = [i for i in range(len(names)) if np.ptp(x[:, i]) > 0]
    if not varying or np.ptp(y) == 0:
        return {}
    forest = RandomForestRegressor(n_estimators=48, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=3, random_state=seed, n_jobs=1)
    raw = {names[i]: max(float(result.importances_mean[i]), 0.0) for i in range(len(names))}
    total = sum(raw.values())
    if total <= 0:
        return dict.fromkeys(raw, 0.0)
    return {k: v / total for k, v in raw.items()}
