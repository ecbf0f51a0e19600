"""Simple regret of our samplers against Optuna's on Branin, Hartmann6 and Levy10.

`python -m bench.strategies.bayes` runs the TPE and GP comparison on its own (Hartmann-6 at
50 trials, Levy-10 and Rosenbrock-10 at 100, a mixed float/int/categorical space at 100),
side by side with Optuna's TPESampler (and GPSampler with `--samplers`), several seeds.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from app.engine import registry
from app.engine.base import StudyContext
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace
from bench.strategies.functions import EXTRA_PROBLEMS, PROBLEMS, Problem

CHECKPOINTS = (20, 50, 100)
OURS = ("random", "sobol", "tpe", "gp")
OPTUNA = ("optuna-random", "optuna-qmc", "optuna-tpe", "optuna-gp")


def run_ours(
    problem: Problem,
    sampler: str,
    seed: int,
    trials: int,
    space_dict: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> list[float]:
    """Values of a sequential run; `space_dict` replaces the problem's space (priors)."""
    space = SearchSpace.from_dict(space_dict or problem.space)
    options = options or {}
    context = StudyContext(
        space=space, direction="minimize", metric="y", seed=seed, options=options
    )
    study = MemoryStudy(registry.build({"name": sampler, **options}, None, context), context)
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
        params = optuna_params(trial, problem.space)
        value = problem(params)
        values.append(value)
        return value

    study.optimize(objective, n_trials=trials)
    return values


def optuna_params(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A config of one of our spaces through Optuna's suggest API."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            params[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("scale") == "log"
            )
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(
                name, spec["low"], spec["high"], log=spec.get("scale") == "log"
            )
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


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


# --- The TPE / GP comparison: python -m bench.strategies.bayes ---------------------------

# (problem, trials): the targets of the TPE work, each against Optuna's sampler.
COMPARISON = (("Hartmann6", 50), ("Levy10", 100), ("Rosenbrock10", 100), ("Mixed", 100))


def _problem(name: str) -> Problem:
    return next(p for p in (*PROBLEMS, *EXTRA_PROBLEMS) if p.name == name)


def compare_one(args: tuple[str, str, int, int]) -> dict[str, Any]:
    problem_name, sampler, seed, trials = args
    problem = _problem(problem_name)
    start = time.perf_counter()
    runner = run_optuna if sampler.startswith("optuna") else run_ours
    values = runner(problem, sampler, seed, trials)
    return {
        "problem": problem_name,
        "trials": trials,
        "sampler": sampler,
        "seed": seed,
        "regret": regret_curve(values, problem.optimum)[-1],
        "seconds": time.perf_counter() - start,
    }


def comparison_table(rows: list[dict[str, Any]], samplers: list[str]) -> str:
    import statistics

    lines = [
        "| problem | trials | sampler | median regret | mean | ratio to Optuna's | s / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for problem, trials in dict.fromkeys((r["problem"], r["trials"]) for r in rows):
        medians: dict[str, float] = {}
        for sampler in samplers:
            runs = [r for r in rows if r["problem"] == problem and r["sampler"] == sampler]
            if runs:
                medians[sampler] = statistics.median(r["regret"] for r in runs)
        for sampler in samplers:
            runs = [r for r in rows if r["problem"] == problem and r["sampler"] == sampler]
            if not runs:
                continue
            peer = medians.get(f"optuna-{sampler}")
            ratio = f"{medians[sampler] / peer:.2f}" if peer else ""
            mean = statistics.mean(r["regret"] for r in runs)
            seconds = statistics.median(r["seconds"] for r in runs)
            lines.append(
                f"| {problem} | {trials} | {sampler} ({len(runs)} seeds) | "
                f"{medians[sampler]:.4g} | {mean:.4g} | {ratio} | {seconds:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    import argparse
    from multiprocessing import Pool

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--samplers", default="tpe,optuna-tpe")
    parser.add_argument(
        "--problems",
        default=",".join(f"{name}:{trials}" for name, trials in COMPARISON),
        help="name:trials,... (Hartmann6, Levy10, Rosenbrock10, Mixed, Branin)",
    )
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    samplers = [s for s in args.samplers.split(",") if available(s)]
    work = [
        (name, sampler, seed, int(trials))
        for name, trials in (item.split(":") for item in args.problems.split(","))
        for sampler in samplers
        for seed in range(args.seeds)
    ]
    # Optuna's GP is by far the slowest: first, so that the processes finish together.
    work.sort(key=lambda job: job[1] != "optuna-gp")
    with Pool(args.processes) as pool:
        rows = pool.map(compare_one, work, chunksize=1)
    print(comparison_table(rows, samplers))


if __name__ == "__main__":
    main()
