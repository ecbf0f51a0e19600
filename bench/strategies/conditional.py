"""Regret on a conditional search space: choosing between two model families.

    python -m bench.strategies.conditional [--seeds 10] [--trials 50] [--processes 2]

The space picks a `family`; each family has its own parameters, and one of them has a
nested one (`degree` exists only for the polynomial kernel of the svm family):

- svm: `C` and `gamma` (log scales) drive Branin through their unit coordinates; `kernel`
  rbf or poly; poly adds a penalty that depends on its `degree` (2..5). Best:
  0.1 + Branin's minimum / 300 with kernel rbf.
- forest: `n_trees` (int, log), `max_depth` (int) and `max_features` drive Hartmann3;
  its best value is 0.12, worse than the svm's, so a sampler must find the right family
  and then tune inside it.

Ours (random, sobol, tpe, gp; `app.engine` through `MemoryStudy`) against Optuna's
define-by-run samplers (TPESampler, TPESampler(multivariate=True, group=True), random),
same seeds, one run. Prints a markdown table of the median simple regret after 10, 25 and
50 trials; raw results go to .bench-cache/strategies/conditional.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
import traceback
from collections import defaultdict
from collections.abc import Mapping
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from app.engine import registry
from app.engine.base import StudyContext
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace
from bench.strategies.functions import branin

CHECKPOINTS = (10, 25, 50)
OURS = ("random", "sobol", "tpe", "gp")
OPTUNA = ("optuna-random", "optuna-tpe", "optuna-tpe-group")
CACHE = Path(".bench-cache/strategies/conditional.json")

SPACE: dict[str, dict[str, Any]] = {
    "family": {"type": "categorical", "choices": ["svm", "forest"]},
    "C": {
        "type": "float",
        "low": 1e-2,
        "high": 1e3,
        "scale": "log",
        "condition": {"family": ["svm"]},
    },
    "gamma": {
        "type": "float",
        "low": 1e-4,
        "high": 1e1,
        "scale": "log",
        "condition": {"family": ["svm"]},
    },
    "kernel": {"type": "categorical", "choices": ["rbf", "poly"], "condition": {"family": ["svm"]}},
    "degree": {"type": "int", "low": 2, "high": 5, "condition": {"kernel": ["poly"]}},
    "n_trees": {
        "type": "int",
        "low": 10,
        "high": 1000,
        "scale": "log",
        "condition": {"family": ["forest"]},
    },
    "max_depth": {"type": "int", "low": 1, "high": 32, "condition": {"family": ["forest"]}},
    "max_features": {
        "type": "float",
        "low": 0.05,
        "high": 1.0,
        "condition": {"family": ["forest"]},
    },
}

BRANIN_MIN = 0.397887
OPTIMUM = 0.1 + BRANIN_MIN / 300

_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
HARTMANN3_MIN = -3.86278


def hartmann3(x: np.ndarray) -> float:
    inner = (_H3_A * (x[None, :] - _H3_P) ** 2).sum(axis=1)
    return float(-(_H3_ALPHA * np.exp(-inner)).sum())


def _unit_log(value: float, low: float, high: float) -> float:
    return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))


def objective(params: Mapping[str, Any]) -> float:
    """The benchmark's loss of one config (active parameters only)."""
    if params["family"] == "svm":
        u1 = _unit_log(float(params["C"]), 1e-2, 1e3)
        u2 = _unit_log(float(params["gamma"]), 1e-4, 1e1)
        value = 0.1 + branin(np.array([-5 + 15 * u1, 15 * u2])) / 300
        if params["kernel"] == "poly":
            value += 0.02 + 0.01 * abs(int(params["degree"]) - 3)
        return value
    x = np.array(
        [
            _unit_log(float(params["n_trees"]), 10, 1000),
            (int(params["max_depth"]) - 1) / 31,
            (float(params["max_features"]) - 0.05) / 0.95,
        ]
    )
    return 0.12 + (hartmann3(x) - HARTMANN3_MIN) / 20


def run_ours(sampler: str, seed: int, trials: int) -> list[float]:
    space = SearchSpace.from_dict(SPACE)
    context = StudyContext(space=space, direction="minimize", metric="loss", seed=seed, options={})
    study = MemoryStudy(registry.build({"name": sampler}, None, context), context)
    values = []
    for _ in range(trials):
        record, _ = study.ask()
        # The space's own check: a sampler must hand out active parameters only.
        space.validate(record.params)
        value = objective(record.params)
        study.tell(record.id, value)
        values.append(value)
    return values


def run_optuna(sampler: str, seed: int, trials: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    samplers: dict[str, Any] = {
        "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "optuna-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        # Optuna's recommended setting for conditional (define-by-run) spaces.
        "optuna-tpe-group": lambda: optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True
        ),
    }
    study = optuna.create_study(sampler=samplers[sampler]())
    values: list[float] = []

    def trial_objective(trial: Any) -> float:
        params: dict[str, Any] = {"family": trial.suggest_categorical("family", ["svm", "forest"])}
        if params["family"] == "svm":
            params["C"] = trial.suggest_float("C", 1e-2, 1e3, log=True)
            params["gamma"] = trial.suggest_float("gamma", 1e-4, 1e1, log=True)
            params["kernel"] = trial.suggest_categorical("kernel", ["rbf", "poly"])
            if params["kernel"] == "poly":
                params["degree"] = trial.suggest_int("degree", 2, 5)
        else:
            params["n_trees"] = trial.suggest_int("n_trees", 10, 1000, log=True)
            params["max_depth"] = trial.suggest_int("max_depth", 1, 32)
            params["max_features"] = trial.suggest_float("max_features", 0.05, 1.0)
        value = objective(params)
        values.append(value)
        return value

    study.optimize(trial_objective, n_trials=trials)
    return values


def one(job: tuple[str, int, int]) -> dict[str, Any]:
    sampler, seed, trials = job
    start = time.perf_counter()
    try:
        runner = run_optuna if sampler.startswith("optuna") else run_ours
        values = runner(sampler, seed, trials)
    except Exception as error:  # a sampler that cannot handle the space is a result too
        return {
            "sampler": sampler,
            "seed": seed,
            "error": f"{type(error).__name__}: {error}",
            "trace": traceback.format_exc(limit=3),
        }
    best, regret = math.inf, []
    for value in values:
        best = min(best, value)
        regret.append(best - OPTIMUM)
    # Trials better than the forest family can ever be: the search found the svm basin.
    beyond_forest = sum(1 for v in values if v < 0.12) / len(values)
    return {
        "sampler": sampler,
        "seed": seed,
        "regret": {str(n): regret[n - 1] for n in CHECKPOINTS if n <= len(regret)},
        "beyond_forest_share": beyond_forest,
        "seconds": time.perf_counter() - start,
    }


def table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["sampler"]].append(row)
    lines = [
        "| sampler | regret @10 | @25 | @50 (median) | @50 (mean) | s / run |",
        "|---|---|---|---|---|---|",
    ]
    for sampler in (*OURS, *OPTUNA):
        runs = grouped.get(sampler, [])
        ok = [r for r in runs if "regret" in r]
        if not runs:
            continue
        if not ok:
            lines.append(f"| {sampler} | failed: {runs[0]['error']} | | | | |")
            continue
        cells = [f"{statistics.median(r['regret'][str(n)] for r in ok):.3g}" for n in CHECKPOINTS]
        mean50 = statistics.fmean(r["regret"][str(CHECKPOINTS[-1])] for r in ok)
        seconds = statistics.median(r["seconds"] for r in ok)
        lines.append(
            f"| {sampler} ({len(ok)} seeds) | {' | '.join(cells)} | {mean50:.3g} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--samplers", default=",".join((*OURS, *OPTUNA)))
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        (sampler, seed, args.trials)
        for sampler in args.samplers.split(",")
        for seed in range(args.seeds)
    ]
    start = time.perf_counter()
    with Pool(args.processes) as pool:
        rows = pool.map(one, jobs, chunksize=1)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f} s; optimum {OPTIMUM:.6f}")


if __name__ == "__main__":
    main()
