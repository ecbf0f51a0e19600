"""Test functions for the Bayesian samplers, with their known minima."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


@dataclass(frozen=True)
class Problem:
    name: str
    bounds: list[tuple[float, float]]
    f: Callable[[np.ndarray], float]
    optimum: float

    @property
    def space(self) -> dict[str, dict]:
        return {
            f"x{i}": {"type": "float", "low": lo, "high": hi}
            for i, (lo, hi) in enumerate(self.bounds)
        }

    def __call__(self, params: Mapping[str, float]) -> float:
        return self.f(np.array([params[f"x{i}"] for i in range(len(self.bounds))], dtype=float))


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    return float(
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )


def hartmann6(x: np.ndarray) -> float:
    inner = (_H_A * (x[None, :] - _H_P) ** 2).sum(axis=1)
    return float(-(_H_ALPHA * np.exp(-inner)).sum())


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    term = math.sin(math.pi * w[0]) ** 2
    mid = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
    last = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(term + mid + last)


PROBLEMS = [
    Problem("Branin", [(-5.0, 10.0), (0.0, 15.0)], branin, 0.397887),
    Problem("Hartmann6", [(0.0, 1.0)] * 6, hartmann6, -3.32237),
    Problem("Levy10", [(-10.0, 10.0)] * 10, levy, 0.0),
]
