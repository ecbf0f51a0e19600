"""What the Pareto set and the hypervolume history cost at the sizes studies reach.

    .venv/bin/python -m bench.strategies.pareto_scale

Times the engine's functions behind `GET /studies/{id}/pareto` (the non-dominated set of
every result) and `GET /studies/{id}/hypervolume` (the hypervolume after every trial) on
random two- and three-objective results, beside the O(n^2) pairwise check the 2-objective
sort replaces (at 10,000 results only: it is the floor an obvious implementation sets)."""

from __future__ import annotations

import time

import numpy as np

from app.engine.pareto import derive_reference, hypervolume_history, pareto_mask


def _seconds(work) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _pairwise_front(points: np.ndarray) -> np.ndarray:
    dominated = np.zeros(len(points), dtype=bool)
    for i in range(len(points)):
        better = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        dominated[i] = better.any()
    return ~dominated


def main() -> None:
    rng = np.random.default_rng(0)
    print(
        "| objectives | results | Pareto front (`pareto_mask`) | hypervolume after every trial | pairwise front (O(n^2)) |"
    )
    print("|---|---:|---:|---:|---:|")
    for objectives in (2, 3):
        for size in (1_000, 10_000, 100_000):
            points = rng.random((size, objectives))
            reference = derive_reference(points)
            front = _seconds(lambda p=points: pareto_mask(p))  # what /pareto computes
            history = (
                _seconds(lambda p=points, r=reference: hypervolume_history(p, r))
                if size <= 10_000
                else float("nan")
            )
            pairwise = (
                _seconds(lambda p=points: _pairwise_front(p)) if size == 10_000 else float("nan")
            )
            cells = [f"{v * 1000:,.1f} ms" if v == v else "-" for v in (front, history, pairwise)]
            print(f"| {objectives} | {size:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
