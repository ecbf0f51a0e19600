"""Asynchronous successive halving (ASHA), asynchronous Hyperband and BOHB.

Rungs sit at min * eta^k of the fidelity, then max. Bracket b starts its trials at rung
b; ASHA is the single bracket 0. A trial's results at its rungs are kept on the trial
(`extra.rungs`, `extra.bracket`, `trial.rung`), so the scheduler needs no intermediate
curves of other trials and no memory of its own. The history's index keeps those results
sorted per (bracket, rung), and the paused trials per rung best first, so a decision or a
promotion is a few bisections, whatever the size of the study.

Modes:
- `stop`: a trial is granted the full budget; at each rung it goes on only while it is
  in the top 1/eta of its bracket's results at that rung.
- `pause`: a trial is granted the budget of its next rung and pauses there. An ask
  resumes the best paused trial that is in the top 1/eta of its rung, with the next
  rung's budget (highest rungs first), and otherwise starts a new config.

As in Optuna's SuccessiveHalvingPruner the top is never empty: the best result of a rung
is always promotable, so every rung's leader eventually reaches the full budget.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.engine import pareto_rungs
from app.engine.base import (
    Action,
    Decision,
    History,
    Sampler,
    Scheduler,
    StudyContext,
    Suggestion,
    TrialRecord,
    oriented,
    unit_rng_seed,
)
from app.engine.errors import ConfigError
from app.engine.index import HistoryIndex, Without, bracket_of, kth_smallest
from app.engine.index import rung_results as rung_values
from app.engine.priors import has_prior, prior_log_pdf, sample_units
from app.engine.samplers import observations
from app.engine.samplers.tpe import gamma, tpe_suggest

_EPS = 1e-9


def _fmt(value: float | None) -> str:
    return "NaN" if value is None else f"{value:.4g}"


def bracket_weights(levels: int, eta: float, brackets: int) -> list[float]:
    """Share of new trials per bracket: as many as synchronous Hyperband would start."""
    top = levels - 1
    weights = []
    for start in range(brackets):
        halvings = top - start
        weights.append(math.ceil((top + 1) / (halvings + 1) * eta**halvings))
    return [w / sum(weights) for w in weights]


class Hyperband(Scheduler):
    """Options: `mode` (stop | pause), `brackets` (how many, from the most aggressive)."""

    name = "hyperband"
    needs_intermediate = False
    default_brackets: int | None = None  # None: one per rung

    def __init__(self, context: StudyContext) -> None:
        super().__init__(context)
        if context.fidelity is None:
            raise ConfigError("fidelity", f"the {self.name} strategy needs a fidelity")
        self.fidelity = context.fidelity
        self.levels = self.fidelity.rungs()
        self.eta = self.fidelity.reduction_factor
        self.mode = str(context.options.get("mode", "stop"))
        wanted = context.options.get("brackets", self.default_brackets) or len(self.levels)
        self.brackets = max(1, min(int(wanted), len(self.levels)))

    # Asking ---------------------------------------------------------------------------

    def suggest(self, history: History, sampler: Sampler) -> Suggestion:
        if self.mode == "pause":
            resume = self._resume(history, lenient=False)
            if resume is not None:
                return resume
        bracket = self.choose_bracket(history.count())
        base = self.new_config(history, sampler, bracket)
        budget = self.levels[bracket] if self.mode == "pause" else self.fidelity.max
        extra = {**base.extra, "bracket": bracket}
        return Suggestion(params=base.params, budget=budget, extra=extra)

    def new_config(self, history: History, sampler: Sampler, bracket: int) -> Suggestion:
        if has_prior(self.context.space):
            return self.prior_band(history, sampler, bracket)
        return sampler.suggest(history)

    def prior_band(self, history: History, sampler: Sampler, bracket: int) -> Suggestion:
        """A new config as PriorBand samples it (Mallik et al., NeurIPS 2023).

        From the sampler with probability 1 / (1 + eta^b) for bracket b (a bracket that
        starts at a low fidelity sees many configs cheaply and explores; one that starts
        high trusts the prior), otherwise from the prior. Once a rung above the first has
        eta results, the prior's share is split with a local search around the incumbent
        (the best config at the highest such rung), in proportion to how likely the top
        configs of that rung are under each: a prior the results contradict loses its
        share to the incumbent, so a wrong belief costs little."""
        number = history.count()
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, number, salt=211))
        draw = rng.random()
        if draw < 1.0 / (1.0 + self.eta**bracket):
            base = sampler.suggest(history)
            return Suggestion(params=base.params, extra={**base.extra, "prior_band": "sampler"})
        space = self.context.space
        source, units = "prior", sample_units(space, rng, 1)[0]
        found = self._prior_band_evidence(history)
        if found is not None:
            incumbent, prior_share = found
            if rng.random() >= prior_share:
                source = "incumbent"
                units = _perturb(incumbent, rng)
        params = space.from_unit(units.tolist())
        index = history.index(self.context.direction)
        for _ in range(8):  # a config already run tells nothing new
            if not index.has_config(params):
                break
            units = _perturb(units, rng)
            params = space.from_unit(units.tolist())
        return Suggestion(params=params, extra={"prior_band": source})

    def _prior_band_evidence(self, history: History) -> tuple[np.ndarray, float] | None:
        """The incumbent's unit coordinates and the prior's share against it, or None
        before any rung above the first has eta results. Reads at most the top 1/eta
        (up to 50) of one rung from the index."""
        index = history.index(self.context.direction)
        rungs = sorted((r for r in index.rungs_with_results() if r > 0), reverse=True)
        space = self.context.space
        for rung in rungs:
            rows = index.rung_rows(rung)
            if len(rows) < max(2, int(self.eta)) or not math.isfinite(rows[0][0]):
                continue
            top = [
                index.records[row[2]] for row in rows[: min(50, max(1, int(len(rows) // self.eta)))]
            ]
            try:
                units = np.array([space.to_unit(t.params, missing=0.5) for t in top])
            except (KeyError, ValueError):
                return None
            incumbent = units[0]
            prior_ll = prior_log_pdf(space, units)
            local_ll = _local_log_pdf(units, incumbent)
            # Rank-weighted, as PriorBand weighs the top configs: the best count most.
            weights = 1.0 / np.arange(1, len(units) + 1)
            weights /= weights.sum()
            gap = float(weights @ (prior_ll - local_ll))
            prior_share = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))
            return incumbent, prior_share
        return None

    def choose_bracket(self, number: int) -> int:
        if self.brackets == 1:
            return 0
        weights = bracket_weights(len(self.levels), self.eta, self.brackets)
        draw = random.Random(unit_rng_seed(self.context.seed, number, salt=101)).random()
        total = 0.0
        for bracket, weight in enumerate(weights):
            total += weight
            if draw < total:
                return bracket
        return self.brackets - 1

    def pending_resume(self, history: History) -> Suggestion | None:
        return self._resume(history, lenient=True) if self.mode == "pause" else None

    def _resume(self, history: History, lenient: bool) -> Suggestion | None:
        """The best paused trial in the top 1/eta of its rung, highest rungs first.

        While new trials may start, the top is floor(n / eta) as in the ASHA paper, so no
        trial is promoted before eta results exist to compare it with. Once no new trial
        may start (`pending_resume`), each rung's leader is promotable, so that the study
        ends with its best trials trained to the full budget."""
        index = history.index(self.context.direction)
        best: tuple[tuple[int, float, int], int, int, int] | None = None
        for (bracket, rung), (mine, number, trial_id) in index.paused_leaders():
            # Only each group's leader matters: if it is not in the top, no one behind is.
            if rung >= len(self.levels) - 1:
                continue
            cutoff, _ = self._cutoff(index.rung_values(bracket, rung), lenient)
            if mine > cutoff:
                continue
            key = (-rung, mine, number)
            if best is None or key < best[0]:
                best = (key, trial_id, bracket, rung)
        if best is None:
            return None
        _, trial_id, bracket, rung = best
        trial = index.records[trial_id]
        competitors = index.rung_values(bracket, rung)
        _, top = self._cutoff(competitors, lenient)
        why = (
            f"promoted from rung {rung} ({self.fidelity.param} {self.levels[rung]:g}): "
            f"{self.context.metric} {_fmt(rung_values(trial)[rung])} is in the top {top} of "
            f"{len(competitors)} trials at that rung"
        )
        return Suggestion(
            params=trial.params, budget=self.levels[rung + 1], resume_trial_id=trial.id, reason=why
        )

    # Deciding -------------------------------------------------------------------------

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        if not trial.intermediate:
            return Decision.keep_going()
        bracket = bracket_of(trial)
        recorded = rung_values(trial)
        steps = sorted(trial.intermediate)
        last_step = steps[-1]
        new: list[int] = []
        for rung in range(bracket, len(self.levels) - 1):
            if rung in recorded:
                continue
            level = self.levels[rung]
            reached = [s for s in steps if s >= level * (1 - _EPS)]
            if not reached:
                break
            value = trial.intermediate[reached[0]]
            recorded[rung] = value if math.isfinite(value) else None
            new.append(rung)
        extra = {"rungs": {str(k): v for k, v in sorted(recorded.items())}}
        if self.mode == "pause":
            return self._pause_decision(history, trial, recorded, new, last_step, extra)
        if not new:
            return Decision.keep_going()
        if len(self.context.objectives) > 1:
            # Several objectives (owner: pareto): the rung is ranked by non-dominated
            # sorting, crowding distance breaking ties (app/engine/pareto_rungs.py).
            return pareto_rungs.decide(
                self.context, history, trial, self.levels, self.eta, new, extra
            )
        index = history.index(self.context.direction)
        reason = ""
        for rung in new:
            others = self._others(index, trial, bracket, rung)
            cutoff, top = self._cutoff(others, add=self._oriented(recorded[rung]))
            size = len(others) + 1
            at_rung = recorded[rung]
            where = f"{self.fidelity.param} {self.levels[rung]:g} (rung {rung})"
            shown_cutoff = cutoff if self.context.direction == "minimize" else -cutoff
            if self._oriented(at_rung) > cutoff:
                worse = ">" if self.context.direction == "minimize" else "<"
                return Decision(
                    Action.STOP,
                    f"stopped at {where}: {self.context.metric} {_fmt(at_rung)} {worse} "
                    f"{_fmt(shown_cutoff)}, the cutoff of rung {rung} (top {top} of "
                    f"{size} trials, 1/{self.eta:g})",
                    rung=rung,
                    extra=extra,
                )
            reason = (
                f"continued at {where}: {self.context.metric} {_fmt(at_rung)} is within the "
                f"top {top} of {size} trials (cutoff {_fmt(shown_cutoff)})"
            )
        return Decision(Action.CONTINUE, reason, rung=max(new), extra=extra)

    def _pause_decision(
        self,
        history: History,
        trial: TrialRecord,
        recorded: dict[int, float | None],
        new: list[int],
        last_step: float,
        extra: dict[str, Any],
    ) -> Decision:
        budget = trial.budget if trial.budget is not None else self.fidelity.max
        if budget >= self.fidelity.max * (1 - _EPS) or last_step < budget * (1 - _EPS):
            if new:  # passed a rung below the granted budget: keep its result, go on
                return Decision(Action.CONTINUE, "", rung=max(new), extra=extra)
            return Decision.keep_going()
        rung = max(
            (k for k, level in enumerate(self.levels) if level <= budget * (1 + _EPS)), default=0
        )
        if rung not in recorded:
            recorded[rung] = trial.intermediate[max(trial.intermediate)]
            extra = {"rungs": {str(k): v for k, v in sorted(recorded.items())}}
        index = history.index(self.context.direction)
        others = self._others(index, trial, bracket_of(trial), rung)
        mine = self._oriented(recorded[rung])
        cutoff, top = self._cutoff(others, add=mine)
        rank = bisect_left(others, mine) + 1
        size = len(others) + 1
        standing = (
            "in the top, so it is promoted at the next ask"
            if mine <= cutoff
            else "it waits for promotion"
        )
        return Decision(
            Action.PAUSE,
            f"paused at {self.fidelity.param} {self.levels[rung]:g} (rung {rung}): "
            f"{self.context.metric} {_fmt(recorded[rung])} ranks {rank} of {size}; "
            f"the top {top} (1/{self.eta:g}) resume with {self.fidelity.param} "
            f"{self.levels[rung + 1]:g}; {standing}",
            rung=rung,
            extra=extra,
        )

    # Helpers --------------------------------------------------------------------------

    def _oriented(self, value: float | None) -> float:
        if value is None or not math.isfinite(value):
            return math.inf
        return oriented(value, self.context.direction)

    @staticmethod
    def _others(
        index: HistoryIndex, trial: TrialRecord, bracket: int, rung: int
    ) -> Sequence[float]:
        """The results at (bracket, rung), sorted, less the deciding trial's own."""
        own = index.rung_value_of(trial.id, bracket, rung)
        return Without(index.rung_values(bracket, rung), own)

    def _cutoff(
        self, ordered: Sequence[float], lenient: bool = True, add: float | None = None
    ) -> tuple[float, int]:
        """The worst value still in the top 1/eta of `ordered` (sorted) with `add`, and the
        size of that top. Lenient: the top holds at least one (a stop decision cannot wait
        for more results)."""
        size = len(ordered) + (add is not None)
        top = int(size // self.eta)
        if lenient:
            top = max(1, top)
        if top == 0:
            return -math.inf, 0
        return (kth_smallest(ordered, top, add) if size else math.inf), top


# The local search around the incumbent: each coordinate moves with this probability,
# by a normal step of this width (unit coordinates), as PriorBand's mutation does.
_LOCAL_RATE = 0.5
_LOCAL_SIGMA = 0.1


def _perturb(units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    moved = units.copy()
    mask = rng.random(len(units)) < _LOCAL_RATE
    if len(units) and not mask.any():
        mask[rng.integers(len(units))] = True
    moved[mask] = np.clip(moved[mask] + rng.normal(0.0, _LOCAL_SIGMA, int(mask.sum())), 0, 1)
    return moved


def _local_log_pdf(units: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Log density of the local search's distribution around `centre` (each coordinate a
    mixture of staying and a normal step), up to the clipping at the bounds."""
    step = units - centre[None, :]
    normal = np.exp(-0.5 * (step / _LOCAL_SIGMA) ** 2) / (_LOCAL_SIGMA * math.sqrt(2 * math.pi))
    # A coordinate left unmoved is a point mass; give it the density of a narrow step so
    # that the incumbent itself scores highest, as a smooth kernel would.
    stay = np.where(np.abs(step) < 1e-9, 1.0 / _LOCAL_SIGMA, 0.0)
    return np.log(_LOCAL_RATE * normal + (1 - _LOCAL_RATE) * stay + 1e-300).sum(axis=1)


class ASHA(Hyperband):
    """Asynchronous successive halving: Hyperband's most aggressive bracket alone."""

    name = "asha"
    default_brackets = 1


class BOHB(Hyperband):
    """Hyperband whose new configs come from a TPE fitted on the highest rung with enough
    results (Falkner et al., 2018); a `random_fraction` (1/3) of configs, and all of them
    before any rung has enough results, come from `strategy.sampler` (random)."""

    name = "bohb"

    def new_config(self, history: History, sampler: Sampler, bracket: int) -> Suggestion:
        space = self.context.space
        number = history.count()
        rng = np.random.default_rng(unit_rng_seed(self.context.seed, number, salt=41))
        fraction = float(self.context.options.get("random_fraction", 1 / 3))
        min_points = int(self.context.options.get("min_points", len(space.searchable) + 2))
        if rng.random() < fraction or not space.searchable:
            return super().new_config(history, sampler, bracket)
        index = history.index(self.context.direction)
        top = len(self.levels) - 1
        # Rows per rung, over every bracket: (oriented result, number, id), best first.
        # Completed trials count at the top rung.
        sources: dict[int, list[Sequence[tuple[float, int, int]]]] = {}
        for rung in index.rungs_with_results():
            sources.setdefault(rung, []).append(index.rung_rows(rung))
        if index.completed_rows():
            sources.setdefault(top, []).append(index.completed_rows())
        usable = [r for r, parts in sources.items() if sum(map(len, parts)) >= max(min_points, 3)]
        if not usable:
            return super().new_config(history, sampler, bracket)
        rung = max(usable)
        parts = sources[rung]
        rows = parts[0] if len(parts) == 1 else list(heapq.merge(*parts))
        finite = bisect_left(rows, (math.inf,))  # non-finite results sort last
        if finite < 2:
            return super().new_config(history, sampler, bracket)
        n_good = gamma(finite)
        positions = observations.subsample(finite, n_good, observations.MAX_ABOVE)
        ranked = [((0.0, 0.0, rows[p][0]), rows[p][1], rows[p][2]) for p in positions]
        observed = observations.from_index(index, ranked, n_good, finite)
        params = tpe_suggest(space, observed, rng, seen=index.has_config)
        return Suggestion(params=params, extra={"model_rung": rung})
