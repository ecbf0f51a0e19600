"""Several objectives and constraints: our samplers against Optuna's, in one run.

    nice -n 10 python -m bench.strategies.multiobjective [--seeds 5] [--processes 2]

- Hypervolume after 100 and 200 evaluations on ZDT1 and ZDT2 (10 variables, reference
  point (1.1, 11)) and DTLZ2 (3 objectives, 12 variables, reference point (3.5, 3.5, 3.5)):
  ours (nsga2, motpe, random) against Optuna's NSGAIISampler, TPESampler (multi-objective)
  and RandomSampler, each with its defaults and the same seed.
- Constrained Branin (Gardner et al. 2014): minimize Branin subject to
  (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50 (best feasible value 0.397887): the best feasible value
  after 50 and 100 evaluations and the share of feasible suggestions, our `tpe` with the
  constraint (constrained TPE) against Optuna's TPESampler with `constraints_func`.

Prints markdown tables (docs/benchmarks.md, "Multi-objective") and keeps the raw results
in .bench-cache/strategies/multiobjective.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np

from app.engine import pareto, registry
from app.engine.base import StudyContext
from app.engine.memory import MemoryStudy
from app.engine.pareto import ConstraintSpec, ObjectiveSpec
from app.engine.space import SearchSpace

CHECKPOINTS = (100, 200)
CONSTRAINED_CHECKPOINTS = (50, 100)
OURS = ("nsga2", "motpe", "random")
OPTUNA = ("optuna-nsga2", "optuna-tpe", "optuna-random")
CACHE = os.path.join(".bench-cache", "strategies", "multiobjective.json")


@dataclass(frozen=True)
class MOProblem:
    name: str
    dims: int
    objectives: int
    reference: tuple[float, ...]
    function: Callable[[np.ndarray], list[float]]

    @property
    def space(self) -> dict[str, Any]:
        return {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(self.dims)}


def zdt1(x: np.ndarray) -> list[float]:
    g = 1 + 9 * x[1:].sum() / (len(x) - 1)
    return [float(x[0]), float(g * (1 - math.sqrt(x[0] / g)))]


def zdt2(x: np.ndarray) -> list[float]:
    g = 1 + 9 * x[1:].sum() / (len(x) - 1)
    return [float(x[0]), float(g * (1 - (x[0] / g) ** 2))]


def dtlz2(x: np.ndarray, objectives: int = 3) -> list[float]:
    g = float(((x[objectives - 1 :] - 0.5) ** 2).sum())
    out = []
    for i in range(objectives):
        value = 1 + g
        for j in range(objectives - 1 - i):
            value *= math.cos(x[j] * math.pi / 2)
        if i > 0:
            value *= math.sin(x[objectives - 1 - i] * math.pi / 2)
        out.append(value)
    return out


PROBLEMS = (
    MOProblem("ZDT1", 10, 2, (1.1, 11.0), zdt1),
    MOProblem("ZDT2", 10, 2, (1.1, 11.0), zdt2),
    MOProblem("DTLZ2", 12, 3, (3.5, 3.5, 3.5), dtlz2),
)

# Constrained Branin -------------------------------------------------------------------

BRANIN_SPACE = {
    "x1": {"type": "float", "low": -5.0, "high": 10.0},
    "x2": {"type": "float", "low": 0.0, "high": 15.0},
}
BRANIN_OPTIMUM = 0.397887


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def branin_constraint(x1: float, x2: float) -> float:
    """<= 0 when feasible."""
    return (x1 - 2.5) ** 2 + (x2 - 7.5) ** 2 - 50.0


# Runs ---------------------------------------------------------------------------------


def run_ours(problem: MOProblem, sampler: str, seed: int, trials: int) -> list[list[float]]:
    space = SearchSpace.from_dict(problem.space)
    objectives = tuple(ObjectiveSpec(f"f{i}", "minimize") for i in range(problem.objectives))
    context = StudyContext(
        space=space,
        direction="minimize",
        metric="f0",
        seed=seed,
        options={},
        objectives=objectives,
    )
    study = MemoryStudy(registry.build({"name": sampler}, None, context), context)
    out = []
    for _ in range(trials):
        asked = study.ask()
        assert asked is not None
        record, _ = asked
        x = np.array([record.params[f"x{i}"] for i in range(problem.dims)], dtype=float)
        values = problem.function(x)
        study.tell(record.id, values)
        out.append(values)
    return out


def _optuna_sampler(name: str, seed: int, constraints: Any = None) -> Any:
    import optuna

    if name == "optuna-nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    if name == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints)
    return optuna.samplers.RandomSampler(seed=seed)


def run_optuna(problem: MOProblem, sampler: str, seed: int, trials: int) -> list[list[float]]:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        directions=["minimize"] * problem.objectives, sampler=_optuna_sampler(sampler, seed)
    )
    out: list[list[float]] = []

    def objective(trial: Any) -> Sequence[float]:
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(problem.dims)])
        values = problem.function(x)
        out.append(values)
        return values

    study.optimize(objective, n_trials=trials)
    return out


def hypervolumes(points: list[list[float]], reference: Sequence[float]) -> dict[int, float]:
    return {
        n: pareto.hypervolume(np.asarray(points[:n]), reference)
        for n in CHECKPOINTS
        if n <= len(points)
    }


def run_constrained_ours(seed: int, trials: int) -> list[tuple[float, float]]:
    space = SearchSpace.from_dict(BRANIN_SPACE)
    context = StudyContext(
        space=space,
        direction="minimize",
        metric="y",
        seed=seed,
        options={},
        constraints=(ConstraintSpec("c", "<=", 0.0),),
    )
    study = MemoryStudy(registry.build({"name": "tpe"}, None, context), context)
    out = []
    for _ in range(trials):
        asked = study.ask()
        assert asked is not None
        record, _ = asked
        x1, x2 = float(record.params["x1"]), float(record.params["x2"])
        value, c = branin(x1, x2), branin_constraint(x1, x2)
        study.tell(record.id, value, constraints=[c])
        out.append((value, c))
    return out


def run_constrained_optuna(seed: int, trials: int) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)

    def constraints(trial: Any) -> Sequence[float]:
        return trial.user_attrs["c"]  # type: ignore[no-any-return]

    study = optuna.create_study(sampler=_optuna_sampler("optuna-tpe", seed, constraints))
    out: list[tuple[float, float]] = []

    def objective(trial: Any) -> float:
        x1 = trial.suggest_float("x1", -5.0, 10.0)
        x2 = trial.suggest_float("x2", 0.0, 15.0)
        value, c = branin(x1, x2), branin_constraint(x1, x2)
        trial.set_user_attr("c", [c])
        out.append((value, c))
        return value

    study.optimize(objective, n_trials=trials)
    return out


def constrained_summary(runs: list[tuple[float, float]]) -> dict[str, Any]:
    best: dict[int, float] = {}
    for n in CONSTRAINED_CHECKPOINTS:
        feasible = [v for v, c in runs[:n] if c <= 0]
        best[n] = min(feasible) if feasible else math.inf
    share = sum(1 for _, c in runs if c <= 0) / len(runs)
    return {"best": best, "feasible_share": share}


def one(job: tuple[str, str, int]) -> dict[str, Any]:
    kind, sampler, seed = job
    start = time.perf_counter()
    if kind == "constrained":
        trials = max(CONSTRAINED_CHECKPOINTS)
        runs = (
            run_constrained_ours(seed, trials)
            if sampler == "tpe"
            else run_constrained_optuna(seed, trials)
        )
        return {
            "kind": kind,
            "sampler": sampler,
            "seed": seed,
            **constrained_summary(runs),
            "seconds": time.perf_counter() - start,
        }
    problem = next(p for p in PROBLEMS if p.name == kind)
    trials = max(CHECKPOINTS)
    runner = run_optuna if sampler.startswith("optuna") else run_ours
    points = runner(problem, sampler, seed, trials)
    return {
        "kind": kind,
        "sampler": sampler,
        "seed": seed,
        "hv": hypervolumes(points, problem.reference),
        "seconds": time.perf_counter() - start,
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def mo_table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["kind"] != "constrained":
            grouped[(row["kind"], row["sampler"])].append(row)
    lines = [
        "| problem | sampler | median HV @100 | @200 | s / run |",
        "|---|---|---|---|---|",
    ]
    order = [p.name for p in PROBLEMS]
    samplers = [*OURS, *OPTUNA]
    for (problem, sampler), runs in sorted(
        grouped.items(), key=lambda it: (order.index(it[0][0]), samplers.index(it[0][1]))
    ):
        cells = [f"{_median([r['hv'][str(n)] for r in runs]):.4g}" for n in CHECKPOINTS]
        seconds = _median([r["seconds"] for r in runs])
        lines.append(
            f"| {problem} | {sampler} ({len(runs)} seeds) | {' | '.join(cells)} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def constrained_table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["kind"] == "constrained":
            grouped[row["sampler"]].append(row)
    lines = [
        "| sampler | median best feasible @50 | @100 | feasible suggestions | s / run |",
        "|---|---|---|---|---|",
    ]
    for sampler, runs in sorted(grouped.items()):
        cells = [
            f"{_median([r['best'][str(n)] for r in runs]):.4g}" for n in CONSTRAINED_CHECKPOINTS
        ]
        share = _median([r["feasible_share"] for r in runs])
        seconds = _median([r["seconds"] for r in runs])
        label = "tpe + constraint (ours)" if sampler == "tpe" else "Optuna TPE + constraints_func"
        lines.append(
            f"| {label} ({len(runs)} seeds) | {' | '.join(cells)} | {share:.0%} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--problems", default=",".join([*(p.name for p in PROBLEMS), "constrained"])
    )
    parser.add_argument("--samplers", help="only these, e.g. motpe,tpe (default: all)")
    args = parser.parse_args(argv)
    kinds = args.problems.split(",")
    only = set(args.samplers.split(",")) if args.samplers else None
    jobs: list[tuple[str, str, int]] = []
    for seed in range(args.seeds):
        for kind in kinds:
            names = ("tpe", "optuna-tpe") if kind == "constrained" else (*OURS, *OPTUNA)
            jobs.extend((kind, name, seed) for name in names if only is None or name in only)
    start = time.perf_counter()
    with Pool(args.processes) as pool:
        rows = pool.map(one, jobs, chunksize=1)
    # JSON keys: checkpoints as strings, as the tables read them.
    rows = json.loads(json.dumps(rows))
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE, "w") as handle:
        json.dump(rows, handle, indent=1)
    print(mo_table(rows))
    print()
    print(constrained_table(rows))
    print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
