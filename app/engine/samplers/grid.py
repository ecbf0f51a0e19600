from __future__ import annotations

import itertools
import random
from functools import cached_property

from app.engine.base import History, Sampler, SearchExhausted, Suggestion
from app.engine.space import DEFAULT_GRID_POINTS, ParamValue


class GridSampler(Sampler):
    """Every combination of grid values, each used once, in a seeded random order.

    Floats (and wide int ranges) take `grid_points` values along their scale; a float
    with a `step` takes every step when that is no more than `grid_points`.
    """

    name = "grid"

    @property
    def points(self) -> int:
        return int(self.context.options.get("grid_points", DEFAULT_GRID_POINTS))

    @cached_property
    def grid(self) -> list[dict[str, ParamValue]]:
        space = self.context.space
        axes = [param.grid(self.points) for param in space]
        configs = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*axes)]
        # A shuffled order makes a grid cut short by max_trials still cover the space.
        random.Random(self.context.seed).shuffle(configs)
        return configs

    def capacity(self) -> int:
        return len(self.grid)

    def suggest(self, history: History) -> Suggestion:
        used: set[int] = set()
        taken_params: list[dict[str, ParamValue]] = []
        for trial in history.trials():
            index = trial.extra.get("grid_index")
            if isinstance(index, int):
                used.add(index)
            else:
                taken_params.append(dict(trial.params))
        for index, config in enumerate(self.grid):
            if index in used or config in taken_params:
                continue
            return Suggestion(params=config, extra={"grid_index": index})
        raise SearchExhausted(f"all {len(self.grid)} grid points have been used")
