"""Suggest latency of tpe and gp with 100 / 1,000 / 5,000 finished trials (Hartmann6)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from app.engine import registry
from app.engine.base import Direction, StudyContext, TrialRecord, TrialState
from app.engine.index import HistoryIndex
from app.engine.memory import MemoryHistory
from app.engine.space import SearchSpace
from bench.strategies.functions import PROBLEMS

SIZES = (100, 1000, 5000)
REPEATS = {100: 30, 1000: 30, 5000: 10}


def history_of(size: int) -> MemoryHistory:
    problem = next(p for p in PROBLEMS if p.name == "Hartmann6")
    rng = np.random.default_rng(0)
    history = MemoryHistory()
    for number in range(size):
        params = {f"x{i}": float(rng.random()) for i in range(6)}
        history.records.append(
            TrialRecord(
                id=number,
                number=number,
                params=params,
                state=TrialState.COMPLETED,
                value=problem(params),
            )
        )
    return history


def one(args: tuple[str, int]) -> dict[str, Any]:
    sampler_name, size = args
    problem = next(p for p in PROBLEMS if p.name == "Hartmann6")
    context = StudyContext(
        space=SearchSpace.from_dict(problem.space),
        direction="minimize",
        metric="y",
        seed=0,
        options={},
    )
    sampler = registry.SAMPLERS[sampler_name](context)
    history = history_of(size)
    # A study in progress: the latest trial carries what the previous ask stored (gp_theta).
    first = sampler.suggest(history)
    history.update(size - 1, extra=dict(first.extra))
    times, cpu = [], []
    for repeat in range(REPEATS[size]):
        # Successive asks of a study: the trial count moves on (it seeds the draw).
        start, start_cpu = time.perf_counter(), time.process_time()
        sampler.suggest(_Counted(history, size + repeat))
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return {
        "sampler": sampler_name,
        "finished": size,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
    }


class _Counted:
    """The same finished trials, seen by the ask of trial number `count`."""

    def __init__(self, history: MemoryHistory, count: int) -> None:
        self.history, self._count = history, count

    def trials(self, states: Any = None) -> Any:
        return self.history.trials(states)

    def count(self) -> int:
        return self._count

    def index(self, direction: Direction) -> HistoryIndex:
        return self.history.index(direction)


def jobs() -> list[tuple[str, int]]:
    return [(s, n) for s in ("tpe", "gp") for n in SIZES]
