"""Simple regret of our samplers against Optuna's on Branin, Hartmann6 and Levy10."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from app.engine import registry
from app.engine.base import StudyContext
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace
from bench.strategies.functions import PROBLEMS, Problem

CHECKPOINTS = (20, 50, 100)
OURS = ("random", "sobol", "tpe", "gp")
OPTUNA = ("optuna-random", "optuna-qmc", "optuna-tpe", "optuna-gp")


def run_ours(problem: Problem, sampler: str, seed: int, trials: int) -> list[float]:
    space = SearchSpace.from_dict(problem.space)
    context = StudyContext(space=space, direction="minimize", metric="y", seed=seed, options={})
    study = MemoryStudy(registry.build({"name": sampler}, None, context), context)
    values = []
    for _ in range(trials):
        record, _ = study.ask()
        value = problem(record.params)
        study.tell(record.id, value)
        values.append(value)
    return values


def run_optuna(problem: Problem, sampler: str, seed: int, trials: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    samplers: dict[str, Any] = {
        "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "optuna-qmc": lambda: optuna.samplers.QMCSampler(
            seed=seed, warn_independent_sampling=False
        ),
        "optuna-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed),
    }
    study = optuna.create_study(sampler=samplers[sampler]())
    values = []

    def objective(trial: Any) -> float:
        params = {
            f"x{i}": trial.suggest_float(f"x{i}", lo, hi)
            for i, (lo, hi) in enumerate(problem.bounds)
        }
        value = problem(params)
        values.append(value)
        return value

    study.optimize(objective, n_trials=trials)
    return values


def regret_curve(values: list[float], optimum: float) -> list[float]:
    best, out = math.inf, []
    for value in values:
        best = min(best, value)
        out.append(best - optimum)
    return out


def available(name: str) -> bool:
    if name != "optuna-gp":
        return True
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def one(args: tuple[str, str, int, int]) -> dict[str, Any]:
    problem_name, sampler, seed, trials = args
    problem = next(p for p in PROBLEMS if p.name == problem_name)
    start = time.perf_counter()
    runner = run_optuna if sampler.startswith("optuna") else run_ours
    values = runner(problem, sampler, seed, trials)
    curve = regret_curve(values, problem.optimum)
    return {
        "problem": problem_name,
        "sampler": sampler,
        "seed": seed,
        "regret": {n: curve[n - 1] for n in CHECKPOINTS if n <= len(curve)},
        "seconds": time.perf_counter() - start,
    }


def jobs(
    seeds: int, trials: int, gp_trials: int, optuna_gp_seeds: int
) -> list[tuple[str, str, int, int]]:
    """GP samplers cost the most per trial (Optuna's took about 5 s a trial on a busy
    2-core host): they run `gp_trials`, and Optuna's GP only `optuna_gp_seeds` seeds."""
    out = []
    for problem in PROBLEMS:
        for sampler in (*OURS, *OPTUNA):
            if not available(sampler):
                continue
            count = gp_trials if sampler in ("gp", "optuna-gp") else trials
            runs = min(seeds, optuna_gp_seeds) if sampler == "optuna-gp" else seeds
            out += [(problem.name, sampler, seed, count) for seed in range(runs)]
    # The longest jobs first, so that the pool's two processes finish together.
    return sorted(out, key=lambda job: job[1] != "optuna-gp")
