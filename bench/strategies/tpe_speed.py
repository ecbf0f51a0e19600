"""The cost of one tpe suggest (the engine alone, no HTTP or database) as a study grows.

    python -m bench.strategies.tpe_speed [--marks 100,1000,10000] [--samples 200]
        [--baseline path/to/older/tpe.py]

Each mark is a history of that many completed trials on an 8-parameter space (floats on
linear and log scales, a stepped int, a stepped float, two categoricals), with values of a
smooth function plus noise, and 4 running trials. The suggest is timed `samples` times
(p50 and p99, ms); `--baseline` times another version of tpe.py on the same histories,
side by side. The API's ask adds its SQL and HTTP to this (bench/scale.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from typing import Any

import numpy as np

from app.engine.base import StudyContext, TrialRecord, TrialState
from app.engine.memory import MemoryHistory
from app.engine.samplers.tpe import TPESampler
from app.engine.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-5, "high": 1.0, "scale": "log"},
        "wd": {"type": "float", "low": 1e-6, "high": 1e-2, "scale": "log"},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "step": 0.01},
        "width": {"type": "int", "low": 8, "high": 512, "step": 8},
        "depth": {"type": "int", "low": 1, "high": 8},
        "act": {"type": "categorical", "choices": ["relu", "gelu", "tanh", "silu"]},
        "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
    }
)


def history_of(size: int, seed: int = 0) -> MemoryHistory:
    rng = np.random.default_rng(seed)
    history = MemoryHistory()
    for number in range(size + 4):
        params = SPACE.from_unit(rng.random(len(SPACE.searchable)).tolist())
        units = SPACE.to_unit(params)
        value = sum((u - 0.3) ** 2 for u in units) + 0.05 * rng.normal()
        running = number >= size
        history.records.append(
            TrialRecord(
                id=number,
                number=number,
                params=params,
                state=TrialState.RUNNING if running else TrialState.COMPLETED,
                value=None if running else value,
            )
        )
    return history


def time_suggest(
    sampler_class: Any, history: MemoryHistory, samples: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each suggest (CPU time is shown beside wall time
    because the development host is shared)."""
    context = StudyContext(space=SPACE, direction="minimize", metric="y", seed=1, options={})
    sampler = sampler_class(context)
    sampler.suggest(history)  # builds the index once, as a warm API process has it
    wall, cpu = [], []
    for _ in range(samples):
        start, start_cpu = time.perf_counter(), time.process_time()
        sampler.suggest(history)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def load_baseline(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("tpe_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tpe_baseline"] = module
    spec.loader.exec_module(module)
    return module.TPESampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--marks", default="100,1000,10000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--baseline", help="another tpe.py to time beside this one")
    args = parser.parse_args()
    samplers: list[tuple[str, Any]] = [("tpe", TPESampler)]
    if args.baseline:
        samplers.append(("baseline", load_baseline(args.baseline)))
    print("| trials | sampler | wall p50 (ms) | wall p99 | CPU p50 | CPU p99 |")
    print("|---|---|---|---|---|---|")
    for mark in (int(m) for m in args.marks.split(",")):
        history = history_of(mark)
        for name, sampler_class in samplers:
            wall, cpu = time_suggest(sampler_class, history, args.samples)
            print(
                f"| {mark:,} | {name} | {statistics.median(wall):.2f} | {p99(wall):.2f} | "
                f"{statistics.median(cpu):.2f} | {p99(cpu):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
