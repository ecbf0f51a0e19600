from __future__ import annotations

import random

from app.engine.base import History, Sampler, Suggestion, unit_rng_seed


class RandomSampler(Sampler):
    """Uniform in each parameter's scale. Trial k's config depends only on (seed, k)."""

    name = "random"

    def suggest(self, history: History) -> Suggestion:
        rng = random.Random(unit_rng_seed(self.context.seed, history.count()))
        point = [rng.random() for _ in self.context.space.searchable]
        return Suggestion(params=self.context.space.from_unit(point))
