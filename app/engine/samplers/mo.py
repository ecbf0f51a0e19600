"""Multi-objective and constrained TPE (Optuna's MOTPE and `constraints_func` rules).

TPE itself (app/engine/samplers/tpe.py) is unchanged: only the order of the results and
the size of the good group change (app/engine/samplers/observations.multi_objective).
Results are split into good and bad by non-dominated rank, the front that straddles the
split by hypervolume contribution (Ozaki et al. 2020/2022, Optuna's MOTPE); with
constraints, feasible results come first and infeasible ones by total violation, so the
good group is feasible whenever enough results are (Optuna's constrained TPE). Running
and queued configs join the bad group (the constant liar), so parallel asks spread out.
"""

from __future__ import annotations

import numpy as np

from app.engine.base import History, Sampler, Suggestion, unit_rng_seed
from app.engine.samplers import observations, tpe
from app.engine.samplers.tpe import TPESampler


class MOTPESampler(Sampler):
    """Options: those of `tpe` (`n_startup_trials`, `n_ei_candidates`)."""

    name = "motpe"

    def suggest(self, history: History) -> Suggestion:
        if not self.context.multi:
            # One objective and no constraint: the plain TPE is the same rule.
            return TPESampler(self.context).suggest(history)
        space = self.context.space
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, history.count(), salt=17))
        startup = int(self.context.options.get("n_startup_trials", tpe.DEFAULT_STARTUP_TRIALS))
        observed = observations.multi_objective(history, self.context, tpe.gamma)
        if len(observed) < max(startup, 1) or not space.searchable:
            return Suggestion(params=space.from_unit(rng.random(len(space.searchable)).tolist()))
        candidates = int(self.context.options.get("n_ei_candidates", tpe.DEFAULT_CANDIDATES))
        index = history.index(self.context.direction)
        return Suggestion(
            params=tpe.tpe_suggest(space, observed, rng, candidates, seen=index.has_config)
        )
