"""The grid sampler: every combination of grid values, each once, in a seeded order.

Nothing is enumerated: grid point k is decoded from k (mixed radix, the order of
`itertools.product` over the parameters' grid values), and the order in which points are
handed out is a seeded permutation of 0..size-1 evaluated one position at a time. An ask
costs O(trials so far), whatever the size of the grid.

A conditional space numbers only the configs of its condition tree
(`app.engine.space.ConditionalGrid`): an inactive parameter takes no value, so the grid
never holds two points that differ only in a value the run would not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TypeGuard

from app.engine.base import History, Sampler, SearchExhausted, Suggestion
from app.engine.options import GridOptions, load_stored
from app.engine.space import ConditionalGrid, ParamValue

_MASK64 = (1 << 64) - 1
_ROUNDS = 4


def _mix(value: int, seed: int, round_number: int) -> int:
    """A 64-bit hash of (value, seed, round) (the splitmix64 finaliser): the same in every
    process, unlike `hash()`."""
    z = (value * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + round_number + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def seeded_position(position: int, size: int, seed: int) -> int:
    """The grid point handed out at `position`: a bijection of 0..size-1 chosen by `seed`.

    A Feistel network permutes the smallest even power of two >= size; positions that
    land outside the grid walk the cycle on until they land inside (fewer than four steps
    on average), which keeps it a bijection of 0..size-1."""
    if size <= 1:
        return 0
    half = ((size - 1).bit_length() + 1) // 2
    mask = (1 << half) - 1
    point = position
    while True:
        left, right = point >> half, point & mask
        for round_number in range(_ROUNDS):
            left, right = right, left ^ (_mix(right, seed, round_number) & mask)
        point = (left << half) | right
        if point < size:
            return point


class GridSampler(Sampler):
    """Every combination of grid values, each used once, in a seeded random order.

    Floats (and wide int ranges) take `grid_points` values along their scale; a float
    with a `step` takes every step when that is no more than `grid_points`.
    """

    name = "grid"

    @property
    def points(self) -> int:
        return load_stored(GridOptions, self.context.options).grid_points

    @cached_property
    def grid(self) -> ConditionalGrid:
        return ConditionalGrid(self.context.space, self.points)

    @cached_property
    def axes(self) -> list[list[ParamValue]]:
        """Each parameter's grid values, in the order of the space."""
        return [self.grid.axes[param.name] for param in self.context.space]

    def capacity(self) -> int:
        return self.grid.size

    def point(self, index: int) -> dict[str, ParamValue]:
        """Grid point `index`: of `itertools.product(*axes)`, the last parameter fastest,
        when the space has no conditions; of its condition tree otherwise."""
        return self.grid.point(index)

    def index_of(self, params: Mapping[str, ParamValue]) -> int | None:
        """The grid point a config is, or None when it is not on the grid."""
        return self.grid.index_of(params)

    def suggest(self, history: History) -> Suggestion:
        size = self.capacity()
        taken: set[int] = set()
        positions: set[int] = set()
        for trial in history.trials():
            point = trial.extra.get("grid_point")
            position = trial.extra.get("grid_position")
            if _is_int(point):
                taken.add(point)
                if _is_int(position):
                    positions.add(position)
            else:
                # A config given by hand, or a trial of a version that kept no grid point.
                index = self.index_of(trial.params)
                if index is not None:
                    taken.add(index)
        # Each position maps to a different point, so at most len(taken) are skipped; the
        # positions trials recorded are skipped without evaluating the permutation.
        for position in range(min(size, len(taken) + 1)):
            if position in positions:
                continue
            index = seeded_position(position, size, self.context.seed)
            if index not in taken:
                extra = {"grid_point": index, "grid_position": position}
                return Suggestion(params=self.point(index), extra=extra)
        raise SearchExhausted(f"all {size} grid points have been used")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
