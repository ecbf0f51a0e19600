"""Test functions for the Bayesian samplers, with their known minima."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
HARTMANN_P = 1e-4 * np.array(
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
    # A space other than floats within `bounds`, and the function of a whole config.
    custom_space: dict[str, dict[str, Any]] | None = None
    of_config: Callable[[Mapping[str, Any]], float] | None = field(default=None, repr=False)
    # Where the optimum is, in the space's values (for priors at, or away from, it).
    argmin: dict[str, Any] | None = None

    @property
    def space(self) -> dict[str, dict]:
        if self.custom_space is not None:
            return self.custom_space
        return {
            f"x{i}": {"type": "float", "low": lo, "high": hi}
            for i, (lo, hi) in enumerate(self.bounds)
        }

    def __call__(self, params: Mapping[str, Any]) -> float:
        if self.of_config is not None:
            return self.of_config(params)
        return self.f(np.array([params[f"x{i}"] for i in range(len(self.bounds))], dtype=float))


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    return float(
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )


def hartmann6(x: np.ndarray) -> float:
    inner = (HARTMANN_A * (x[None, :] - HARTMANN_P) ** 2).sum(axis=1)
    return float(-(HARTMANN_ALPHA * np.exp(-inner)).sum())


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    term = math.sin(math.pi * w[0]) ** 2
    mid = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
    last = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(term + mid + last)


def rosenbrock(x: np.ndarray) -> float:
    return float((100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum())


HARTMANN6_ARGMIN = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]

# Mixed: Hartmann-6 whose last two inputs are integers 0..20 (divided by 20), with two
# categoricals that interact with the rest: `mirror` evaluates the function at 1 - x
# (its optimum elsewhere, and worse by 0.3), `shift` at x rotated by a quarter; `act`
# adds an offset. The best config uses "none" and "gelu" with i0 = 6, i1 = 13, where
# the floats' minimum is -3.3141948 (found numerically; the grid misses the continuous
# optimum -3.32237).
_MIXED_OFFSET = {"none": 0.0, "mirror": 0.3, "shift": 0.5}
_MIXED_ACT = {"relu": 0.15, "tanh": 0.4, "gelu": 0.0, "sigmoid": 0.8}
MIXED_SPACE: dict[str, dict[str, Any]] = {
    **{f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(4)},
    "i0": {"type": "int", "low": 0, "high": 20},
    "i1": {"type": "int", "low": 0, "high": 20},
    "transform": {"type": "categorical", "choices": ["mirror", "shift", "none"]},
    "act": {"type": "categorical", "choices": ["relu", "tanh", "gelu", "sigmoid"]},
}


def mixed(params: Mapping[str, Any]) -> float:
    x = np.array([*(params[f"x{i}"] for i in range(4)), params["i0"] / 20, params["i1"] / 20])
    transform = params["transform"]
    if transform == "mirror":
        x = 1.0 - x
    elif transform == "shift":
        x = (x + 0.25) % 1.0
    return hartmann6(x) + _MIXED_OFFSET[transform] + _MIXED_ACT[params["act"]]


PROBLEMS = [
    Problem("Branin", [(-5.0, 10.0), (0.0, 15.0)], branin, 0.397887),
    Problem(
        "Hartmann6",
        [(0.0, 1.0)] * 6,
        hartmann6,
        -3.32237,
        argmin={f"x{i}": v for i, v in enumerate(HARTMANN6_ARGMIN)},
    ),
    Problem("Levy10", [(-10.0, 10.0)] * 10, levy, 0.0),
]

# Further problems for the TPE comparison (bench/strategies/bayes.py); kept out of
# PROBLEMS so that the all-strategies run keeps its size.
EXTRA_PROBLEMS = [
    Problem("Rosenbrock10", [(-5.0, 10.0)] * 10, rosenbrock, 0.0),
    Problem(
        "Mixed",
        [],
        hartmann6,
        -3.3141949,
        custom_space=MIXED_SPACE,
        of_config=mixed,
        argmin={
            "x0": 0.20206,
            "x1": 0.14988,
            "x2": 0.47591,
            "x3": 0.27553,
            "i0": 6,
            "i1": 13,
            "transform": "none",
            "act": "gelu",
        },
    ),
]
