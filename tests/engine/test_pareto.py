"""app/engine/pareto.py against brute force: fronts, crowding, hypervolume, orderings."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from app.engine import pareto


def brute_ranks(points: np.ndarray) -> list[int]:
    left = set(range(len(points)))
    ranks = [0] * len(points)
    rank = 0
    while left:
        front = {i for i in left if not any(pareto.dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def brute_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over every subset: exact for a handful of points."""
    inside = [p for p in points if np.all(p < ref)]
    total = 0.0
    for size in range(1, len(inside) + 1):
        for subset in itertools.combinations(inside, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(ref - corner))
    return total


@pytest.mark.parametrize("objectives", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_brute_force(objectives, seed):
    rng = np.random.default_rng(seed)
    # Integer coordinates make ties and duplicates common.
    points = rng.integers(0, 6, size=(40, objectives)).astype(float)
    assert pareto.nondominated_ranks(points).tolist() == brute_ranks(points)


@pytest.mark.parametrize("objectives", [2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_hypervolume_matches_inclusion_exclusion(objectives, seed):
    rng = np.random.default_rng(seed)
    points = rng.random((8, objectives))
    ref = np.full(objectives, 1.1)
    assert pareto.hypervolume(points, ref) == pytest.approx(brute_hypervolume(points, ref))


def test_hypervolume_ignores_points_outside_the_reference_box():
    points = np.array([[0.5, 0.5], [2.0, 0.0], [math.nan, 0.1]])
    assert pareto.hypervolume(points, [1.0, 1.0]) == pytest.approx(0.25)
    assert pareto.hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0


def test_hypervolume_history_grows_with_the_front():
    points = [[0.5, 0.5], None, [0.6, 0.6], [0.2, 0.8], [0.1, 0.1]]
    history = pareto.hypervolume_history(points, [1.0, 1.0])
    assert history == pytest.approx([0.25, 0.25, 0.25, 0.25 + 0.3 * 0.2, 0.81])


def test_contributions_and_crowding():
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    contrib = pareto.hypervolume_contributions(front, [2.0, 2.0])
    assert contrib == pytest.approx([0.5, 0.25, 0.5])
    crowd = pareto.crowding_distance(front)
    assert math.isinf(crowd[0]) and math.isinf(crowd[2]) and crowd[1] == pytest.approx(2.0)


def test_two_objectives_sort_10000_points_without_a_quadratic_pass():
    rng = np.random.default_rng(0)
    points = rng.random((10_000, 2))
    start = time.perf_counter()
    ranks = pareto.nondominated_ranks(points)
    elapsed = time.perf_counter() - start
    # A pairwise pass is 10^8 comparisons; the sweep takes a few milliseconds.
    assert elapsed < 1.0
    assert ranks.min() == 0 and pareto.pareto_mask(points).sum() == (ranks == 0).sum()
    sample = rng.choice(len(points), 300, replace=False)
    assert ranks[sample].tolist() == _ranks_in(points, sample)


def _ranks_in(points: np.ndarray, sample: np.ndarray) -> list[int]:
    """The front of a sampled point: 1 + the largest front among its dominators."""
    ranks = pareto.nondominated_ranks(points)
    out = []
    for i in sample:
        dominators = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        out.append(int(ranks[dominators].max()) + 1 if dominators.any() else 0)
    return out


def test_derived_reference_is_worst_plus_a_tenth_of_the_range():
    points = np.array([[0.0, 10.0], [1.0, 20.0], [0.5, 20.0]])
    assert pareto.derive_reference(points) == pytest.approx([1.1, 21.0])
    assert pareto.derive_reference(np.array([[3.0, 3.0]])) == pytest.approx([4.0, 4.0])


def test_constraints_violation_and_feasibility():
    limits = (pareto.ConstraintSpec("mem", "<=", 24), pareto.ConstraintSpec("acc", ">=", 0.9))
    assert pareto.violations(limits, [30.0, 0.95]) == [6.0, 0.0]
    assert pareto.is_feasible(limits, [20.0, 0.95]) is True
    assert pareto.is_feasible(limits, [20.0, 0.5]) is False
    assert pareto.is_feasible(limits, [20.0, None]) is None
    assert pareto.violations(limits, [math.nan, 1.0])[0] == math.inf


def test_constrained_order_puts_feasible_first_then_by_violation():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.2, 0.9]])
    totals = [3.0, 0.0, None, 0.0]
    order = pareto.constrained_order(points, totals).tolist()
    # Feasible: 1 and 3 (3 dominates 1? no: 0.2<1, 0.9<1 -> yes, 3 first), then 0, then 2.
    assert order == [3, 1, 0, 2]


def test_front_of_respects_directions():
    values = {1: [0.9, 30.0], 2: [0.8, 10.0], 3: [0.7, 20.0]}
    assert sorted(pareto.front_of(values, ["maximize", "minimize"])) == [1, 2]
    assert sorted(pareto.front_of(values, ["minimize", "minimize"])) == [2, 3]


def test_three_objective_front_of_3000_points_matches_a_pairwise_check():
    rng = np.random.default_rng(1)
    points = rng.random((3000, 3))
    start = time.perf_counter()
    mask = pareto.pareto_mask(points)
    assert time.perf_counter() - start < 2.0
    le = np.all(points[:, None, :] <= points[None, :, :], axis=2)
    lt = np.any(points[:, None, :] < points[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)  # [j]: some i dominates j
    assert mask.tolist() == (~dominated).tolist()


def test_ranks_with_a_limit_are_exact_up_to_it():
    rng = np.random.default_rng(2)
    points = rng.integers(0, 8, size=(60, 3)).astype(float)
    full = np.asarray(brute_ranks(points))
    limited = pareto.nondominated_ranks(points, limit=10)
    exact = full <= limited.max() - 1
    assert (limited[exact] == full[exact]).all()
    assert (full[~exact] >= limited.max()).all() and exact.sum() >= 10
