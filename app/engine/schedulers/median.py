"""The median stopping rule (Golovin et al., Google Vizier; SageMaker's "Auto")."""

from __future__ import annotations

import math

from app.engine.base import Action, Decision, History, Scheduler, TrialRecord, oriented
from app.engine.index import median_of_sorted

DEFAULT_MIN_TRIALS = 5


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class MedianStoppingRule(Scheduler):
    """Stops a trial whose best value so far is worse than the median of the finished
    (completed or stopped) trials' running averages at the same step.

    As in Vizier, the comparison is with trials that will not report again, whose
    averages the history keeps sorted per step: a decision costs the same at 100 trials
    as at 100,000. A finished trial counts at the steps it reported.

    Options (beside `rule`): `min_trials` (5) finished trials must have reported the step
    before the rule acts, `warmup_steps` (0) steps during which no trial is stopped.
    """

    name = "median"
    needs_intermediate = True

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        if not trial.intermediate:
            return Decision.keep_going()
        step = max(trial.intermediate)
        warmup = float(self.context.options.get("warmup_steps", 0))
        min_trials = int(self.context.options.get("min_trials", DEFAULT_MIN_TRIALS))
        if step < warmup:
            return Decision.keep_going()
        direction = self.context.direction
        metric = self.context.metric
        # A trial whose metric went NaN or infinite has no best value: it is the worst.
        finite = [oriented(v, direction) for v in trial.intermediate.values() if math.isfinite(v)]
        mine = min(finite, default=math.inf)
        averages = history.index(direction).step_averages(step)
        if len(averages) < min_trials:
            return Decision.keep_going()
        median = median_of_sorted(averages)
        if mine > median:
            shown = mine if direction == "minimize" else -mine
            cutoff = median if direction == "minimize" else -median
            return Decision(
                Action.STOP,
                f"stopped at step {step:g}: best {metric} so far {_fmt(shown)} is worse than "
                f"{_fmt(cutoff)}, the median of {len(averages)} finished trials' running "
                f"averages at step {step:g}",
            )
        return Decision.keep_going()
