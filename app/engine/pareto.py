"""Several objectives and constraints: non-dominated sorting, crowding distance, hypervolume.

Every function works on points "oriented" so that smaller is better in every coordinate
(`orient` flips maximized objectives). Rules and their sources:

- Non-dominated sorting (Deb et al. 2002, NSGA-II). Two objectives take O(n log n) in
  all (Jensen 2003: sweep the points sorted by the first objective and put each on the
  first front whose smallest second objective is above its own, found by bisection);
  a single O(n^2) pass would cost 10^8 comparisons at 10,000 trials. Three or more
  objectives peel fronts comparing each point only with the current front's members.
- Crowding distance (Deb et al. 2002): per objective, the gap between a point's two
  neighbours over the front's range; the ends of each objective get +inf.
- Hypervolume against a reference point: 2 objectives by a sweep (O(n log n)); 3 by
  slicing along the third objective (O(n^2 log n), fine for fronts of hundreds).
- Reference point when none is given: per objective, the worst value on record plus 10%
  of the observed range (+1 when the range is 0), as Optuna's hypervolume history and
  pymoo's defaults do in spirit: every recorded feasible point then adds volume.
- Constraints (Deb 2000, Optuna's `constraints_func`): a trial is feasible when every
  constraint holds; infeasible trials are never on the Pareto set and rank after every
  feasible one, by their total violation.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.engine.base import Direction

ConstraintOp = Literal["<=", ">="]
# How far past zero a violation must be to count: tolerates round-off of a limit.
VIOLATION_EPS = 0.0
RANGE_MARGIN = 0.1


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: str
    direction: Direction
    aggregate: Literal["last", "best"] = "last"


@dataclass(frozen=True)
class ConstraintSpec:
    metric: str
    op: ConstraintOp
    value: float

    def violation(self, observed: float | None) -> float | None:
        """How far `observed` is past the limit (0 when met); None when not reported.
        NaN counts as infinitely far: a broken measurement must not look feasible."""
        if observed is None:
            return None
        if math.isnan(observed):
            return math.inf
        gap = observed - self.value if self.op == "<=" else self.value - observed
        return max(0.0, gap)


def violations(
    constraints: Sequence[ConstraintSpec], observed: Sequence[float | None] | None
) -> list[float | None]:
    """Per constraint, how far the trial is past its limit (None: not reported)."""
    if not constraints:
        return []
    got = list(observed or [])
    got += [None] * (len(constraints) - len(got))
    return [c.violation(v) for c, v in zip(constraints, got, strict=False)]


def total_violation(
    constraints: Sequence[ConstraintSpec], observed: Sequence[float | None] | None
) -> float | None:
    """Sum of the violations: 0 for a feasible trial, None when a constraint is unreported
    (treated as infeasible by callers that must decide)."""
    parts = violations(constraints, observed)
    if any(p is None for p in parts):
        return None
    return float(sum(p for p in parts if p is not None))


def is_feasible(
    constraints: Sequence[ConstraintSpec], observed: Sequence[float | None] | None
) -> bool | None:
    if not constraints:
        return True
    total = total_violation(constraints, observed)
    return None if total is None else total <= VIOLATION_EPS


def orient(values: Sequence[float], directions: Sequence[Direction]) -> list[float]:
    return [v if d == "minimize" else -v for v, d in zip(values, directions, strict=True)]


def unorient(values: Sequence[float], directions: Sequence[Direction]) -> list[float]:
    return orient(values, directions)  # flipping twice is the identity


# Non-dominated sorting --------------------------------------------------------------


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` is no worse than `b` everywhere and better somewhere (smaller is better)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def nondominated_ranks(points: np.ndarray, limit: int | None = None) -> np.ndarray:
    """The front of each point: 0 for the non-dominated ones, 1 for those dominated only
    by front 0, and so on. Equal points share a front. With `limit`, three or more
    objectives stop peeling once the fronts found hold `limit` points: the rest share the
    next rank (a caller that needs only the best `limit` spares the other fronts)."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=int)
    if points.ndim == 1 or points.shape[1] == 1:
        column = points.reshape(n, -1)[:, 0]
        _, ranks = np.unique(column, return_inverse=True)
        return np.asarray(ranks, dtype=int).reshape(n)
    if points.shape[1] == 2:
        return _ranks_2d(points)
    return _ranks_peeling(points, limit)


def _ranks_2d(points: np.ndarray) -> np.ndarray:
    """Sorted by (f1, f2) with duplicates merged, an earlier point dominates a later one
    iff its f2 is no larger; so each point goes on the first front whose smallest f2 is
    above its own. Those smallest f2 never decrease with the front: a bisection finds it."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)  # sorted lexicographically
    fronts_min: list[float] = []
    ranks = np.empty(len(unique), dtype=int)
    for i, f2 in enumerate(unique[:, 1].tolist()):
        k = bisect_right(fronts_min, f2)
        if k == len(fronts_min):
            fronts_min.append(f2)
        else:
            fronts_min[k] = f2
        ranks[i] = k
    return ranks[np.asarray(inverse).reshape(-1)]


def _ranks_peeling(points: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Fronts peeled one at a time; in lexicographic order only an earlier point can
    dominate a later one, so each is compared with the front's members found so far."""
    n = len(points)
    order = np.lexsort(points.T[::-1])
    ranks = np.full(n, -1, dtype=int)
    remaining = order
    rank = 0
    found = 0
    while remaining.size:
        if limit is not None and found >= limit:
            ranks[remaining] = rank
            break
        members: list[int] = []
        rest: list[int] = []
        for i in remaining.tolist():
            p = points[i]
            if members:
                front = points[members]
                dominated = bool(np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1)))
            else:
                dominated = False
            (rest if dominated else members).append(i)
        ranks[members] = rank
        found += len(members)
        rank += 1
        remaining = np.asarray(rest, dtype=int)
    return ranks


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Whether each point is non-dominated (one front only: no peeling beyond it)."""
    return nondominated_ranks(points, limit=1) == 0


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Per point of one front: the sum over objectives of the gap between its neighbours,
    over the objective's range; each objective's extremes get +inf."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for column in points.T:
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        span = ordered[-1] - ordered[0]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span <= 0 or not math.isfinite(span):
            continue
        gaps = (ordered[2:] - ordered[:-2]) / span
        distance[order[1:-1]] += gaps
    return distance


# Hypervolume ------------------------------------------------------------------------


def _dominating(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=float).reshape(-1, len(reference))
    keep = np.all(points < reference, axis=1) & np.all(np.isfinite(points), axis=1)
    return points[keep]


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by `points` and bounded by `reference` (smaller is better)."""
    ref = np.asarray(reference, dtype=float)
    pts = _dominating(points, ref)
    if len(pts) == 0:
        return 0.0
    if len(ref) == 1:
        return float(ref[0] - pts[:, 0].min())
    if len(ref) == 2:
        return _hv2(pts, ref)
    if len(ref) == 3:
        return _hv3(pts, ref)
    return _hv_slices(pts, ref)


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    order = np.lexsort((points[:, 1], points[:, 0]))
    volume, ceiling = 0.0, float(ref[1])
    for x, y in points[order].tolist():
        if y < ceiling:
            volume += (ref[0] - x) * (ceiling - y)
            ceiling = y
    return float(volume)


def _hv3(points: np.ndarray, ref: np.ndarray) -> float:
    """Slices along the third objective: between consecutive z levels the dominated area
    is the 2-D hypervolume of the points at or below the slice."""
    order = np.argsort(points[:, 2], kind="stable")
    pts = points[order]
    volume = 0.0
    for i in range(len(pts)):
        top = pts[i + 1, 2] if i + 1 < len(pts) else ref[2]
        height = top - pts[i, 2]
        if height > 0:
            volume += _hv2(pts[: i + 1, :2], ref[:2]) * height
    return float(volume)


def _hv_slices(points: np.ndarray, ref: np.ndarray) -> float:
    """Any dimension by slicing along the last objective (exponential; beyond 3 only)."""
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    volume = 0.0
    for i in range(len(pts)):
        top = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        height = top - pts[i, -1]
        if height > 0:
            volume += hypervolume(pts[: i + 1, :-1], ref[:-1].tolist()) * height
    return float(volume)


def hypervolume_contributions(points: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """What each point alone adds: the hypervolume lost without it."""
    points = np.asarray(points, dtype=float)
    total = hypervolume(points, reference)
    out = np.empty(len(points))
    for i in range(len(points)):
        out[i] = total - hypervolume(np.delete(points, i, axis=0), reference)
    return out


def derive_reference(points: np.ndarray) -> list[float] | None:
    """The worst value per objective plus 10% of the observed range (+1 when it is 0)."""
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return None
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return None
    worst, best = pts.max(axis=0), pts.min(axis=0)
    span = worst - best
    margin = np.where(span > 0, RANGE_MARGIN * span, 1.0)
    return [float(v) for v in worst + margin]


def hypervolume_history(
    points: Sequence[Sequence[float] | None], reference: Sequence[float]
) -> list[float]:
    """The hypervolume after each point in turn (None: a trial without a feasible result,
    which changes nothing). The front is kept as it grows: a dominated newcomer costs one
    comparison pass over the front, and the volume is recomputed only when the front moves."""
    ref = np.asarray(reference, dtype=float)
    out: list[float] = []
    front = np.zeros((0, len(ref)))
    volume = 0.0
    for point in points:
        if point is not None:
            p = np.asarray(point, dtype=float)
            inside = bool(np.all(np.isfinite(p)) and np.all(p < ref))
            if inside:
                dominated = bool(np.any(np.all(front <= p, axis=1))) if len(front) else False
                if not dominated:
                    beaten = np.all(p <= front, axis=1) if len(front) else np.zeros(0, bool)
                    front = np.vstack([front[~beaten], p[None, :]])
                    volume = hypervolume(front, reference)
        out.append(volume)
    return out


# Orderings for samplers -------------------------------------------------------------


def constrained_order(
    points: np.ndarray,
    totals: Sequence[float | None],
    n_first: int | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Positions best first: feasible points by non-dominated rank, the front that
    straddles `n_first` by hypervolume contribution (Optuna's MOTPE split), the rest of a
    front by crowding distance; then infeasible ones by total violation (Optuna's
    `constraints_func` rule). A total of None (constraint not reported) is worst."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    feasible = [i for i in range(n) if totals[i] is not None and totals[i] <= VIOLATION_EPS]  # type: ignore[operator]
    chosen_set = set(feasible)
    infeasible = sorted(
        (i for i in range(n) if i not in chosen_set),
        key=lambda i: (math.inf if totals[i] is None else totals[i], i),
    )
    order: list[int] = []
    if feasible:
        sub = points[feasible]
        # Only the first `limit` places matter to the caller: fronts beyond them are not
        # peeled apart (three objectives), they stay one group in crowding order.
        ranks = nondominated_ranks(sub, limit)
        target = n_first if n_first is not None else len(feasible)
        for rank in range(int(ranks.max()) + 1 if len(ranks) else 0):
            members = np.flatnonzero(ranks == rank)
            if len(members) > 1:
                members = _order_front(sub[members], members, target - len(order))
            order.extend(feasible[int(m)] for m in members)
    order.extend(infeasible)
    return np.asarray(order, dtype=int)


def _order_front(front: np.ndarray, members: np.ndarray, wanted: int) -> np.ndarray:
    """A front's members best first. When only part of it is wanted (it straddles the
    split), greedily by hypervolume contribution against the front's own worst point
    scaled out, as Optuna's MOTPE solves its subset selection; else by crowding distance."""
    if 0 < wanted < len(members) and front.shape[1] > 1 and len(members) <= 300:
        worst = front.max(axis=0)
        ref = np.maximum(1.1 * worst, 0.9 * worst)
        ref[ref == 0] = 1e-12
        chosen = _greedy_subset(front, ref, wanted)
        taken = set(chosen)
        left = [j for j in range(len(members)) if j not in taken]
        crowding = crowding_distance(front)
        rest = sorted(left, key=lambda j: -crowding[j])
        return members[[*chosen, *rest]]
    distance = crowding_distance(front)
    return members[np.argsort(-distance, kind="stable")]


def _greedy_subset(front: np.ndarray, ref: np.ndarray, wanted: int) -> list[int]:
    """Hypervolume subset selection, greedy: each step takes the point that adds the most
    volume to those taken. A point's gain only shrinks as the set grows (hypervolume is
    submodular), so a stale gain is an upper bound: only the top of the heap is re-valued
    (lazy greedy), which spares most of the hypervolume computations."""
    heap = [(-float(np.prod(ref - p)), j) for j, p in enumerate(front)]
    heapq.heapify(heap)
    chosen: list[int] = []
    base = 0.0
    while heap and len(chosen) < wanted:
        _, j = heapq.heappop(heap)
        volume = hypervolume(front[[*chosen, j]], ref.tolist())
        gain = volume - base
        if not heap or gain >= -heap[0][0] - 1e-15:
            chosen.append(j)
            base = volume
        else:
            heapq.heappush(heap, (-gain, j))
    return chosen


def oriented_matrix(rows: Sequence[Sequence[float]], directions: Sequence[Direction]) -> np.ndarray:
    signs = np.asarray([1.0 if d == "minimize" else -1.0 for d in directions])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(directions)) * signs


def front_of(values: Mapping[int, Sequence[float]], directions: Sequence[Direction]) -> list[int]:
    """The keys whose values are non-dominated (smaller or larger per `directions`)."""
    keys = [k for k, v in values.items() if v is not None and all(math.isfinite(x) for x in v)]
    if not keys:
        return []
    mask = pareto_mask(oriented_matrix([values[k] for k in keys], directions))
    return [k for k, on in zip(keys, mask.tolist(), strict=True) if on]
