from __future__ import annotations

import warnings

from scipy.stats import qmc

from app.engine.base import History, Sampler, Suggestion


class SobolSampler(Sampler):
    """A scrambled Sobol sequence: even coverage of the space with few trials."""

    name = "sobol"

    def suggest(self, history: History) -> Suggestion:
        space = self.context.space
        dimensions = len(space.searchable)
        if dimensions == 0:
            return Suggestion(params=space.from_unit([]))
        engine = qmc.Sobol(d=dimensions, scramble=True, seed=self.context.seed)
        index = history.count()
        if index:
            engine.fast_forward(index)
        with warnings.catch_warnings():
            # Sobol balance warnings for non-powers of two do not apply to one-by-one draws.
            warnings.simplefilter("ignore")
            point = engine.random(1)[0]
        return Suggestion(params=space.from_unit([float(u) for u in point]))
