"""Parameter importance from finished trials. No database here: configs and values in,
one share per parameter out.

Two methods, both through maintained libraries:
- `fanova` (default): functional ANOVA on a random forest, Hutter et al. 2014, as
  implemented by Optuna's `FanovaImportanceEvaluator`: the share of the objective's
  variance that each parameter explains on its own.
- `permutation`: a scikit-learn random forest and its permutation importance (Breiman
  2001): how much the forest's fit drops when a parameter's values are shuffled.

Numeric parameters enter in the space's unit coordinates, so a log-scaled learning rate
is judged on its log scale, as the samplers see it. A conditional parameter absent from a
trial (inactive) is not dropped: it enters as a value of its own, `INACTIVE_UNIT` below
the range for numbers and an extra "inactive" choice for categories, so that trials of
every branch of the space are fitted together.

The cost is bounded whatever the study's size: at most `MAX_ROWS` trials (an even random
sample, the same for the same trials) are fitted, and fANOVA's forest has `FANOVA_TREES`
trees of depth `FANOVA_DEPTH` (Optuna's default, 64 trees of depth 64, takes most of a
minute at 1,000 trials on one core and ranks parameters the same).

This is the one implementation: `GET /studies/{id}/importance` and the dashboard's
importance chart both read `app.importance.service`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.engine.space import CategoricalParam, FixedParam, Param, SearchSpace

Method = Literal["fanova", "permutation"]
METHODS: tuple[str, ...] = ("fanova", "permutation")
MIN_TRIALS = 5
SEED = 0
MAX_ROWS = 1000
FANOVA_TREES = 16
FANOVA_DEPTH = 8
# Where an inactive numeric parameter sits, below the unit range of active values: a
# tree splits it off from every active value with one cut.
INACTIVE_UNIT = -0.25
INACTIVE_LABEL = "inactive"
LABELS = {
    "fanova": "fANOVA: share of the variance explained",
    "permutation": "permutation importance (random forest)",
}


@dataclass(frozen=True)
class Importance:
    method: str
    n_trials: int
    params: dict[str, float]  # parameter -> share, summing to 1 (empty when too few trials)
    note: str = ""


def _varying(space: SearchSpace, configs: Sequence[Mapping[str, Any]]) -> list[Param]:
    """Parameters that took at least two values: the others explain nothing."""
    out: list[Param] = []
    for param in space:
        if isinstance(param, FixedParam):
            continue
        values = {repr(c.get(param.name)) for c in configs}
        if len(values) > 1:
            out.append(param)
    return out


def _normalized(raw: Mapping[str, float]) -> dict[str, float]:
    clipped = {k: max(0.0, float(v)) if math.isfinite(v) else 0.0 for k, v in raw.items()}
    total = sum(clipped.values())
    if total <= 0:
        return {k: 0.0 for k in clipped}
    ranked = sorted(clipped.items(), key=lambda item: -item[1])
    return {k: v / total for k, v in ranked}


def compute(
    space: SearchSpace,
    configs: Sequence[Mapping[str, Any]],
    values: Sequence[float],
    method: Method = "fanova",
) -> Importance:
    """Importance of each parameter for `values` (any direction: variance has no sign)."""
    if len(configs) < MIN_TRIALS:
        return Importance(
            method,
            len(configs),
            {},
            f"needs at least {MIN_TRIALS} completed trials with a finite value; has {len(configs)}",
        )
    n_total = len(configs)
    params = _varying(space, configs)
    if not params:
        return Importance(method, len(configs), {}, "no parameter took more than one value")
    if len(params) == 1:
        return Importance(method, len(configs), {params[0].name: 1.0}, "only one parameter varied")
    note = ""
    if len(configs) > MAX_ROWS:
        configs, values = _sample(configs, values)
        note = f"fitted on an even random sample of {MAX_ROWS} of the trials"
    if method == "permutation":
        raw = _permutation(params, configs, values)
    else:
        raw = _fanova(params, configs, values)
    return Importance(method, n_total, _normalized(raw), note)


def _sample(
    configs: Sequence[Mapping[str, Any]], values: Sequence[float]
) -> tuple[list[Mapping[str, Any]], list[float]]:
    """`MAX_ROWS` of the trials, the same ones for the same input (a seeded draw)."""
    import numpy as np

    chosen = sorted(np.random.default_rng(SEED).choice(len(configs), MAX_ROWS, replace=False))
    return [configs[i] for i in chosen], [values[i] for i in chosen]


def _unit_row(params: Sequence[Param], config: Mapping[str, Any]) -> list[float]:
    return [float(p.to_unit(config[p.name])) if p.name in config else INACTIVE_UNIT for p in params]


def _inactive_choice(param: CategoricalParam) -> str:
    """A choice standing for "inactive" that is none of the parameter's own."""
    label = INACTIVE_LABEL
    while label in param.choices:
        label = f"({label})"
    return label


def _permutation(
    params: Sequence[Param], configs: Sequence[Mapping[str, Any]], values: Sequence[float]
) -> dict[str, float]:
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    x = np.array([_unit_row(params, c) for c in configs])
    y = np.array(values, dtype=float)
    forest = RandomForestRegressor(
        n_estimators=200, min_samples_leaf=1, random_state=SEED, n_jobs=1
    )
    forest.fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=10, random_state=SEED, n_jobs=1)
    return {p.name: float(result.importances_mean[i]) for i, p in enumerate(params)}


def _fanova(
    params: Sequence[Param], configs: Sequence[Mapping[str, Any]], values: Sequence[float]
) -> dict[str, float]:
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {}
    for param in params:
        sometimes_inactive = any(param.name not in c for c in configs)
        if isinstance(param, CategoricalParam):
            choices = list(param.choices)
            if sometimes_inactive:
                choices.append(_inactive_choice(param))
            distributions[param.name] = CategoricalDistribution(choices)
        else:
            low = INACTIVE_UNIT if sometimes_inactive else 0.0
            distributions[param.name] = FloatDistribution(low, 1.0)
    study = optuna.create_study(direction="minimize")
    for config, value in zip(configs, values, strict=True):
        row: dict[str, Any] = {}
        for param in params:
            if param.name not in config:
                inactive = (
                    _inactive_choice(param)
                    if isinstance(param, CategoricalParam)
                    else INACTIVE_UNIT
                )
                row[param.name] = inactive
            elif isinstance(param, CategoricalParam):
                row[param.name] = config[param.name]
            else:
                row[param.name] = float(param.to_unit(config[param.name]))
        study.add_trial(
            optuna.trial.create_trial(params=row, distributions=distributions, value=float(value))
        )
    found = get_param_importances(
        study,
        evaluator=FanovaImportanceEvaluator(
            n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=SEED
        ),
    )
    return {name: float(found.get(name, 0.0)) for name in distributions}
