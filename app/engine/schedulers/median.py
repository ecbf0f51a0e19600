"""The median stopping rule (Golovin et al., Google Vizier; SageMaker's "Auto")."""

from __future__ import annotations

import math
import statistics

from app.engine.base import Action, Decision, History, Scheduler, TrialRecord, TrialState, oriented

DEFAULT_MIN_TRIALS = 5


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class MedianStoppingRule(Scheduler):
    """Stops a trial whose best value so far is worse than the median of the other trials'
    running averages at the same step.

    Options (beside `rule`): `min_trials` (5) other trials must have reached the step
    before the rule acts, `warmup_steps` (0) steps during which no trial is stopped.
    """

    name = "median"
    needs_intermediate = True

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        curve = {s: v for s, v in trial.intermediate.items() if math.isfinite(v)}
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
        mine = min((oriented(v, direction) for v in curve.values()), default=math.inf)
        averages: list[float] = []
        for other in history.trials():
            if other.id == trial.id or other.state in (TrialState.QUEUED, TrialState.CANCELLED):
                continue
            if not other.intermediate or max(other.intermediate) < step:
                continue  # it has not reached this step: nothing to compare with
            upto = [oriented(v, direction) for s, v in other.intermediate.items() if s <= step]
            finite = [v for v in upto if math.isfinite(v)]
            if finite:
                averages.append(sum(finite) / len(finite))
        if len(averages) < min_trials:
            return Decision.keep_going()
        median = statistics.median(averages)
        if mine > median:
            shown = mine if direction == "minimize" else -mine
            cutoff = median if direction == "minimize" else -median
            return Decision(
                Action.STOP,
                f"stopped at step {step:g}: best {metric} so far {_fmt(shown)} is worse than "
                f"{_fmt(cutoff)}, the median of {len(averages)} other trials' running averages "
                f"at step {step:g}",
            )
        return Decision.keep_going()
