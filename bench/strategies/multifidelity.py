"""Multi-fidelity strategies replayed in simulated time with parallel workers, ours and
Optuna's side by side.

    nice -n 10 .venv/bin/python -m bench.strategies.multifidelity            # everything
    ... -m bench.strategies.multifidelity --parts target --problems pool --seeds 5

Problems (27 epochs each, rungs at 1, 3, 9, 27 with eta 3):
- `pool`: 2,592 real learning curves (small MLPs on digits, bench/strategies/curves.py),
  validation error; target: one of the best 1 % of the pool's final values.
- `mfh6-good`, `mfh6-bad`: the multi-fidelity Hartmann-6 of mf-prior-bench (Mallik et
  al., 2023, after Kandasamy et al., 2017): Hartmann-6 whose weights are flattened
  (bias) and noised at low fidelity, both fading to the true function at the last
  epoch. "good" and "bad" are that benchmark's two presets of low-fidelity correlation
  (bias, noise 2.5, 2.0 and 3.5, 4.0). Target: the 1st percentile of the final values of
  20,000 random configs.
- `digits`, `diabetes`: the earlier 108-config tables (`--problems digits`).

Each worker trains one trial an epoch per time unit; a paused trial resumes from its
checkpoint. Part `target`: epochs spent (compute) and time units (wall) until a trial
trained to the full budget reaches the target. Part `stop`: the early-stopping rules
(median, forecast, asha) over a fixed number of trials: the best final value reached and
the epochs spent, side by side.
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
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import Pool
from typing import Any

import numpy as np

from app.engine import registry
from app.engine.base import Action, Fidelity, StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace
from bench.strategies import curves
from bench.strategies.functions import HARTMANN_A, HARTMANN_ALPHA, HARTMANN_P

WORKERS = 4
MAX_EPOCHS = curves.EPOCHS
CAP = 15_000  # epochs after which a run counts as not reaching the target
FIDELITY = Fidelity("epoch", 1, MAX_EPOCHS, 3.0)
TARGET_PERCENTILE = 1.0
STOP_TRIALS = 150  # trials of each run of part `stop`

FORECAST = {"rule": "forecast"}
OURS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "random, full budget": ({"name": "random"}, None),
    "tpe, full budget": ({"name": "tpe"}, None),
    "asha stop": ({"name": "asha", "mode": "stop"}, None),
    "asha stop + forecast": ({"name": "asha", "mode": "stop"}, FORECAST),
    "asha pause": ({"name": "asha", "mode": "pause"}, None),
    "asha pause + tpe": ({"name": "asha", "mode": "pause", "sampler": "tpe"}, None),
    "asha pause + tpe + forecast": (
        {"name": "asha", "mode": "pause", "sampler": "tpe"},
        FORECAST,
    ),
    "hyperband stop": ({"name": "hyperband", "mode": "stop"}, None),
    "hyperband pause": ({"name": "hyperband", "mode": "pause"}, None),
    "bohb stop": ({"name": "bohb", "mode": "stop"}, None),
    "bohb pause": ({"name": "bohb", "mode": "pause"}, None),
    "bohb pause + forecast": ({"name": "bohb", "mode": "pause"}, FORECAST),
}
OPTUNA = (
    "optuna random + SuccessiveHalving",
    "optuna random + Hyperband",
    "optuna tpe + SuccessiveHalving",
    "optuna tpe + Hyperband",
    "optuna tpe, full budget",
)
# Part `stop`: stopping rules beside random search, and asha with and without the
# forecast as an extra stop.
MEDIAN = {"rule": "median"}
STOPPING: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "random, full budget": ({"name": "random"}, None),
    "random + median": ({"name": "random"}, MEDIAN),
    "random + forecast": ({"name": "random"}, FORECAST),
    "asha stop": ({"name": "asha", "mode": "stop"}, None),
    "asha stop + forecast": ({"name": "asha", "mode": "stop"}, FORECAST),
    "asha pause": ({"name": "asha", "mode": "pause"}, None),
    "asha pause + forecast": ({"name": "asha", "mode": "pause"}, FORECAST),
}
STOPPING_OPTUNA = ("optuna random + Median", "optuna random + SuccessiveHalving")


# Problems ----------------------------------------------------------------------------

MFH_PRESETS = {"mfh6-good": (2.5, 2.0), "mfh6-bad": (3.5, 4.0)}


def mf_hartmann6(x: np.ndarray, step: int, bias: float, noise: float) -> float:
    """Hartmann-6 at epoch `step` of MAX_EPOCHS: weights lowered by `bias` and a
    half-normal `noise` added, both scaled by (1 - log step / log max), so the last
    epoch is the true function. The noise is a fixed function of (config, step)."""
    fraction = math.log(step) / math.log(MAX_EPOCHS)
    alpha = HARTMANN_ALPHA - bias * (1 - fraction)
    inner = (HARTMANN_A * (x[None, :] - HARTMANN_P) ** 2).sum(axis=1)
    value = -float((alpha * np.exp(-inner)).sum())
    seed = [int(v * 2**31) for v in x] + [step]
    return value + abs(float(np.random.default_rng(seed).normal())) * noise * (1 - fraction)


@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, dict[str, Any]]
    curve: Callable[[dict[str, Any]], list[float]]
    target: float
    optimum: float

    def suggest_optuna(self, trial: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, spec in self.space.items():
            if spec["type"] == "int":
                params[name] = trial.suggest_int(name, spec["low"], spec["high"])
            elif spec["type"] == "float":
                params[name] = trial.suggest_float(name, spec["low"], spec["high"])
            else:
                params[name] = trial.suggest_categorical(name, spec["choices"])
        return params


def _table_problem(task: str, percentile: float) -> Problem:
    table = curves.load(task)
    grid = curves.grid_of(task)
    space: dict[str, dict[str, Any]] = {}
    for name, values in grid.items():
        if all(isinstance(v, str) for v in values):
            space[name] = {"type": "categorical", "choices": list(values)}
        else:
            space[name] = {"type": "int", "low": 0, "high": len(values) - 1}

    def curve(params: dict[str, Any]) -> list[float]:
        index = {
            n: (grid[n].index(v) if space[n]["type"] == "categorical" else int(v))
            for n, v in params.items()
        }
        return table[curves.key(index)]

    finals = [c[-1] for c in table.values()]
    return Problem(task, space, curve, float(np.percentile(finals, percentile)), float(min(finals)))


def _mfh_problem(name: str, percentile: float) -> Problem:
    bias, noise = MFH_PRESETS[name]
    space = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}

    def curve(params: dict[str, Any]) -> list[float]:
        x = np.array([float(params[f"x{i}"]) for i in range(6)])
        return [mf_hartmann6(x, step, bias, noise) for step in range(1, MAX_EPOCHS + 1)]

    rng = np.random.default_rng(0)
    finals = [mf_hartmann6(x, MAX_EPOCHS, bias, noise) for x in rng.random((20_000, 6))]
    return Problem(name, space, curve, float(np.percentile(finals, percentile)), -3.32237)


@lru_cache(maxsize=8)
def problem(name: str, percentile: float = TARGET_PERCENTILE) -> Problem:
    if name in MFH_PRESETS:
        return _mfh_problem(name, percentile)
    return _table_problem(name, percentile)


# Replays -----------------------------------------------------------------------------


@dataclass
class Outcome:
    epochs_to_target: float = math.inf
    wall_to_target: float = math.inf
    epochs: int = 0  # spent in all
    trials: int = 0
    best: float = math.inf  # best final value of a trial trained to the full budget

    def as_dict(self) -> dict[str, float]:
        return {
            "epochs": self.epochs_to_target,
            "wall": self.wall_to_target,
            "spent": self.epochs,
            "trials": self.trials,
            "best": self.best,
        }


def run_ours(
    prob: Problem,
    strategy: dict[str, Any],
    early: dict[str, Any] | None,
    seed: int,
    max_trials: int | None = None,
) -> Outcome:
    """Until the target is reached (max_trials None) or `max_trials` trials finished."""
    multi = strategy["name"] in registry.MULTI_FIDELITY
    context = StudyContext(
        space=SearchSpace.from_dict(prob.space),
        direction="minimize",
        metric="err",
        seed=seed,
        options={k: v for k, v in strategy.items() if k != "name"},
        fidelity=FIDELITY,
    )
    study = MemoryStudy(registry.build(strategy, early, context), context)
    slots: list[int | None] = [None] * WORKERS
    progress: dict[int, int] = {}
    cache: dict[int, list[float]] = {}
    out = Outcome()
    tick = 0
    finished = 0
    while out.epochs < CAP:
        tick += 1
        worked = False
        for slot in range(WORKERS):
            if slots[slot] is None:
                if max_trials is not None and study.history.count() >= max_trials:
                    asked = study.ask(can_create=False)
                    if asked is None:
                        continue
                else:
                    asked = study.ask()
                assert asked is not None
                slots[slot] = asked[0].id
                progress.setdefault(asked[0].id, 0)
            trial_id = slots[slot]
            assert trial_id is not None
            record = study.history.get(trial_id)
            if trial_id not in cache:
                cache[trial_id] = prob.curve(dict(record.params))
            step = progress[trial_id] + 1
            progress[trial_id] = step
            value = cache[trial_id][step - 1]
            out.epochs += 1
            worked = True
            decision = study.report(trial_id, {float(step): value})
            if decision.action != Action.CONTINUE:
                slots[slot] = None
                finished += decision.action == Action.STOP
            elif step >= MAX_EPOCHS or (not multi and step >= (record.budget or MAX_EPOCHS)):
                study.tell(trial_id, value, TrialState.COMPLETED)
                slots[slot] = None
                finished += 1
                out.best = min(out.best, value)
                if value <= prob.target and math.isinf(out.epochs_to_target):
                    out.epochs_to_target, out.wall_to_target = out.epochs, tick
                    if max_trials is None:
                        out.trials = study.history.count()
                        return out
        if not worked:  # nothing left to run or resume
            break
    out.trials = study.history.count()
    return out


def _optuna_study(combo: str, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if "random" in combo
        else optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    )
    pruner: Any = optuna.pruners.NopPruner()
    if "SuccessiveHalving" in combo:
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    elif "Hyperband" in combo:
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=3
        )
    elif "Median" in combo:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5)
    return optuna.create_study(sampler=sampler, pruner=pruner)


def run_optuna(prob: Problem, combo: str, seed: int, max_trials: int | None = None) -> Outcome:
    import optuna

    study = _optuna_study(combo, seed)
    slots: list[tuple[Any, list[float], int] | None] = [None] * WORKERS
    out = Outcome()
    tick = 0
    while out.epochs < CAP:
        tick += 1
        worked = False
        for slot in range(WORKERS):
            if slots[slot] is None:
                if max_trials is not None and len(study.trials) >= max_trials:
                    continue
                trial = study.ask()
                slots[slot] = (trial, prob.curve(prob.suggest_optuna(trial)), 0)
            trial, curve, step = slots[slot]  # type: ignore[misc]
            step += 1
            value = curve[step - 1]
            out.epochs += 1
            worked = True
            trial.report(value, step)
            slots[slot] = (trial, curve, step)
            if step >= MAX_EPOCHS:
                study.tell(trial, value)
                slots[slot] = None
                out.best = min(out.best, value)
                if value <= prob.target and math.isinf(out.epochs_to_target):
                    out.epochs_to_target, out.wall_to_target = out.epochs, tick
                    if max_trials is None:
                        out.trials = len(study.trials)
                        return out
            elif trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                slots[slot] = None
        if not worked:
            break
    out.trials = len(study.trials)
    return out


def one(args: tuple[str, str, str, int, float]) -> dict[str, Any]:
    part, name, strategy, seed, percentile = args
    prob = problem(name, percentile)
    start = time.perf_counter()
    limit = STOP_TRIALS if part == "stop" else None
    if strategy.startswith("optuna"):
        result = run_optuna(prob, strategy, seed, limit)
    elif part == "stop":
        body, early = STOPPING[strategy]
        result = run_ours(prob, body, early, seed, limit)
    else:
        body, early = OURS[strategy]
        result = run_ours(prob, body, early, seed, limit)
    return {
        "part": part,
        "task": name,
        "strategy": strategy,
        "seed": seed,
        **result.as_dict(),
        "seconds": time.perf_counter() - start,
    }


def jobs(
    seeds: int, tasks: list[str], percentile: float, parts: tuple[str, ...] = ("target",)
) -> list[tuple[str, str, str, int, float]]:
    out: list[tuple[str, str, str, int, float]] = []
    for part in parts:
        names = (*OURS, *OPTUNA) if part == "target" else (*STOPPING, *STOPPING_OPTUNA)
        out += [(part, t, n, s, percentile) for t in tasks for n in names for s in range(seeds)]
    return out


# Cost at scale ------------------------------------------------------------------------


def decision_cost(n_trials: int, repeats: int = 300) -> dict[str, float]:
    """Milliseconds per ask (PriorBand draws from a prior) and per report (asha's rung
    decision, then the forecast) in a study that already holds `n_trials` finished
    trials with rung results: what a decision costs must not grow with the study."""
    from app.engine.base import TrialRecord
    from app.engine.memory import MemoryHistory

    space = SearchSpace.from_dict(
        {
            "x": {"type": "float", "low": 0.0, "high": 1.0, "prior": {"value": 0.3}},
            "y": {"type": "float", "low": 0.0, "high": 1.0},
        }
    )
    context = StudyContext(
        space=space, direction="minimize", metric="err", seed=0, options={}, fidelity=FIDELITY
    )
    strategy = registry.build({"name": "asha", "mode": "stop"}, FORECAST, context)
    history = MemoryHistory()
    rng = np.random.default_rng(0)
    levels = FIDELITY.rungs()
    for number in range(n_trials):
        # Values rising with the number keep every sorted insert an append.
        top = 3 if number % 27 == 0 else (1 if number % 3 == 0 else 0)
        rungs = {str(r): 1.0 + number * 1e-6 + r for r in range(top + 1) if r < len(levels) - 1}
        state = TrialState.COMPLETED if top == 3 else TrialState.STOPPED
        history.add(
            TrialRecord(
                number,
                number,
                {"x": float(rng.random()), "y": float(rng.random())},
                state,
                value=1.0 + number * 1e-6,
                budget=FIDELITY.max,
                rung=min(top, len(levels) - 2),
                extra={"rungs": rungs, "bracket": 0},
            )
        )
    history.index("minimize")
    start = time.perf_counter()
    for _ in range(repeats):
        strategy.suggest(history)
    ask = (time.perf_counter() - start) / repeats * 1e3
    probe = TrialRecord(
        n_trials,
        n_trials,
        {"x": 0.3, "y": 0.5},
        TrialState.RUNNING,
        budget=FIDELITY.max,
        intermediate={1.0: 2.0, 2.0: 1.9, 3.0: 1.85, 4.0: 1.82},
        extra={"bracket": 0, "rungs": {"0": 2.0, "1": 1.85}},
        rung=1,
    )
    start = time.perf_counter()
    for _ in range(repeats):
        strategy.on_result(history, probe)
    report = (time.perf_counter() - start) / repeats * 1e3
    return {"trials": n_trials, "ask_ms": ask, "report_ms": report}


# Report ------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _fmt(value: float, digits: int = 4) -> str:
    return "not reached" if math.isinf(value) else f"{value:.{digits}g}"


def target_table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["task"], row["strategy"])].append(row)
    lines = [
        "| problem | strategy | median epochs to target | median wall (4 workers) "
        "| reached | vs random |",
        "|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        base = _median([r["epochs"] for r in grouped[(task, "random, full budget")]])
        for (t, name), runs in grouped.items():
            if t != task:
                continue
            epochs = _median([r["epochs"] for r in runs])
            wall = _median([r["wall"] for r in runs])
            reached = sum(1 for r in runs if math.isfinite(r["epochs"]))
            ratio = base / epochs if math.isfinite(epochs) and math.isfinite(base) else math.nan
            lines.append(
                f"| {task} | {name} | {_fmt(epochs)} | {_fmt(wall)} | {reached}/{len(runs)} "
                f"| {ratio:.1f}x |"
            )
    return "\n".join(lines)


def stop_table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["task"], row["strategy"])].append(row)
    lines = [
        f"| problem | strategy | median best final value ({STOP_TRIALS} trials) "
        "| mean best | median epochs spent | vs full budget |",
        "|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        base = _median([r["spent"] for r in grouped[(task, "random, full budget")]])
        for (t, name), runs in grouped.items():
            if t != task:
                continue
            best = [r["best"] for r in runs]
            spent = _median([r["spent"] for r in runs])
            lines.append(
                f"| {task} | {name} | {_fmt(_median(best))} | {_fmt(statistics.mean(best))} "
                f"| {_fmt(spent)} | {base / spent:.1f}x less |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.strategies.multifidelity")
    parser.add_argument("--parts", default="target,stop")
    parser.add_argument("--problems", default="pool,mfh6-good,mfh6-bad")
    parser.add_argument("--stop-problems", default="pool")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--target-percentile", type=float, default=TARGET_PERCENTILE)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--strategies", default="", help="only these strategies (names separated by ';')"
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    started = time.perf_counter()
    if "cost" in parts:
        costs = [decision_cost(n) for n in (1_000, 10_000, 100_000)]
        print("| finished trials | ask ms (PriorBand) | report ms (asha + forecast) |")
        print("|---|---|---|")
        for row in costs:
            print(f"| {row['trials']:,} | {row['ask_ms']:.3f} | {row['report_ms']:.3f} |")
        parts = [p for p in parts if p != "cost"]
        if not parts:
            return
    work: list[tuple[str, str, str, int, float]] = []
    if "target" in parts:
        work += jobs(args.seeds, args.problems.split(","), args.target_percentile, ("target",))
    if "stop" in parts:
        work += jobs(args.seeds, args.stop_problems.split(","), args.target_percentile, ("stop",))
    for name in {job[1] for job in work}:
        problem(name, args.target_percentile)  # tables loaded before the pool splits work
    strategies = set(args.strategies.split(";")) if args.strategies else None
    if strategies is not None:
        work = [job for job in work if job[2] in strategies]
    # Rows are written as they come (a long run stopped halfway keeps what it measured).
    curves.CACHE.mkdir(parents=True, exist_ok=True)
    log = curves.CACHE / "mf-rows.jsonl"
    rows: list[dict[str, Any]] = []
    with Pool(args.processes) as pool, log.open("a") as sink:
        for row in pool.imap_unordered(one, work, chunksize=1):
            rows.append(row)
            sink.write(json.dumps(row, default=str) + "\n")
            sink.flush()
    order = {job[:4]: i for i, job in enumerate(work)}
    rows.sort(key=lambda r: order[(r["part"], r["task"], r["strategy"], r["seed"])])
    out: list[str] = []
    for name in dict.fromkeys(job[1] for job in work):
        prob = problem(name, args.target_percentile)
        out.append(f"- {name}: target {prob.target:.4g}, best possible {prob.optimum:.4g}")
    out.append("")
    if "target" in parts:
        out += [
            f"### Compute to target (percentile {args.target_percentile:g} of final values, "
            f"median of {args.seeds} seeds, cap {CAP} epochs)",
            "",
            target_table([r for r in rows if r["part"] == "target"]),
            "",
        ]
    if "stop" in parts:
        out += [
            f"### Stopping rules over {STOP_TRIALS} trials (median of {args.seeds} seeds)",
            "",
            stop_table([r for r in rows if r["part"] == "stop"]),
            "",
        ]
    out.append(
        f"Total run time: {time.perf_counter() - started:.0f} s on {args.processes} processes."
    )
    curves.CACHE.mkdir(parents=True, exist_ok=True)
    suffix = f"{'-'.join(parts)}-{args.problems.replace(',', '-')}-p{args.target_percentile:g}"
    (curves.CACHE / f"mf-{suffix}.json").write_text(json.dumps(rows, indent=1, default=str))
    print("\n".join(out))


if __name__ == "__main__":
    main()
