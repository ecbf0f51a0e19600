"""Replays the tabulated learning curves in simulated time with parallel workers.

Each worker trains one trial an epoch per time unit; a paused trial resumes from its
checkpoint. Measured per run: epochs spent (compute) and time units (wall) until a trial
trained to the full budget reaches the target: a percentile of the table's final values
(3: one of the best 4 of 108 configs; 10: one of the best 11)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.engine import registry
from app.engine.base import Action, Fidelity, StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace
from bench.strategies import curves

WORKERS = 4
MAX_EPOCHS = curves.EPOCHS
CAP = 4000  # epochs after which a run counts as not reaching the target
FIDELITY = Fidelity("epoch", 1, MAX_EPOCHS, 3.0)
SPACE = {
    name: {"type": "int", "low": 0, "high": len(values) - 1} for name, values in curves.GRID.items()
}

OURS: dict[str, dict[str, Any]] = {
    "random, full budget": {"name": "random"},
    "tpe, full budget": {"name": "tpe"},
    "asha stop": {"name": "asha", "mode": "stop"},
    "asha pause": {"name": "asha", "mode": "pause"},
    "asha pause + tpe": {"name": "asha", "mode": "pause", "sampler": "tpe"},
    "hyperband stop": {"name": "hyperband", "mode": "stop"},
    "hyperband pause": {"name": "hyperband", "mode": "pause"},
    "bohb stop": {"name": "bohb", "mode": "stop"},
    "bohb pause": {"name": "bohb", "mode": "pause"},
}
OPTUNA = ("optuna random + SuccessiveHalving", "optuna tpe + Hyperband", "optuna tpe, full budget")


TARGET_PERCENTILE = 3.0


def target_of(table: dict[str, list[float]], percentile: float | None = None) -> float:
    chosen = TARGET_PERCENTILE if percentile is None else percentile
    return float(np.percentile([c[-1] for c in table.values()], chosen))


def run_ours(
    table: dict[str, list[float]], strategy: dict[str, Any], seed: int, target: float
) -> dict[str, float]:
    multi = strategy["name"] in registry.MULTI_FIDELITY
    context = StudyContext(
        space=SearchSpace.from_dict(SPACE),
        direction="minimize",
        metric="err",
        seed=seed,
        options={k: v for k, v in strategy.items() if k != "name"},
        fidelity=FIDELITY,
    )
    study = MemoryStudy(registry.build(strategy, None, context), context)
    slots: list[int | None] = [None] * WORKERS
    progress: dict[int, int] = {}
    spent = 0
    tick = 0
    while spent < CAP:
        tick += 1
        for slot in range(WORKERS):
            if slots[slot] is None:
                asked = study.ask()
                assert asked is not None
                slots[slot] = asked[0].id
                progress.setdefault(asked[0].id, 0)
            trial_id = slots[slot]
            assert trial_id is not None
            record = study.history.get(trial_id)
            step = progress[trial_id] + 1
            progress[trial_id] = step
            value = table[curves.key(dict(record.params))][step - 1]  # type: ignore[arg-type]
            spent += 1
            decision = study.report(trial_id, {float(step): value})
            if decision.action != Action.CONTINUE:
                slots[slot] = None
            elif step >= MAX_EPOCHS or (not multi and step >= (record.budget or MAX_EPOCHS)):
                study.tell(trial_id, value, TrialState.COMPLETED)
                slots[slot] = None
                if value <= target:
                    return {"epochs": spent, "wall": tick, "trials": study.history.count()}
    return {"epochs": float("inf"), "wall": float("inf"), "trials": study.history.count()}


def run_optuna(
    table: dict[str, list[float]], combo: str, seed: int, target: float
) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    factories: dict[str, Callable[[], Any]] = {
        "optuna random + SuccessiveHalving": lambda: optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        ),
        "optuna tpe + Hyperband": lambda: optuna.create_study(
            sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
            pruner=optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=3
            ),
        ),
        "optuna tpe, full budget": lambda: optuna.create_study(
            sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
        ),
    }
    study = factories[combo]()
    slots: list[tuple[Any, str, int] | None] = [None] * WORKERS
    spent = 0
    tick = 0
    while spent < CAP:
        tick += 1
        for slot in range(WORKERS):
            if slots[slot] is None:
                trial = study.ask()
                config = {n: trial.suggest_int(n, 0, len(v) - 1) for n, v in curves.GRID.items()}
                slots[slot] = (trial, curves.key(config), 0)
            trial, key, step = slots[slot]  # type: ignore[misc]
            step += 1
            value = table[key][step - 1]
            spent += 1
            trial.report(value, step)
            slots[slot] = (trial, key, step)
            if step >= MAX_EPOCHS:
                study.tell(trial, value)
                slots[slot] = None
                if value <= target:
                    return {"epochs": spent, "wall": tick, "trials": len(study.trials)}
            elif trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                slots[slot] = None
    return {"epochs": float("inf"), "wall": float("inf"), "trials": len(study.trials)}


def one(args: tuple[str, str, int, float]) -> dict[str, Any]:
    task, name, seed, percentile = args
    table = curves.load(task)
    target = target_of(table, percentile)
    start = time.perf_counter()
    if name in OPTUNA:
        result = run_optuna(table, name, seed, target)
    else:
        result = run_ours(table, OURS[name], seed, target)
    return {
        "task": task,
        "strategy": name,
        "seed": seed,
        **result,
        "seconds": time.perf_counter() - start,
    }


def jobs(seeds: int, tasks: list[str], percentile: float) -> list[tuple[str, str, int, float]]:
    return [
        (task, name, seed, percentile)
        for task in tasks
        for name in (*OURS, *OPTUNA)
        for seed in range(seeds)
    ]
