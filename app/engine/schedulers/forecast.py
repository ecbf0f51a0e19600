"""The forecast stopping rule: stop a trial whose curve is not expected to beat the best.

The median rule and successive halving compare where curves are now; this rule fits a
model of where the reporting trial's curve will end (app/engine/forecast.py, a
parametric ensemble as in Domhan et al., 2015) and stops it when the probability that
its value at the horizon beats the incumbent (the best completed trial) falls below
`threshold`. The decision reads the trial's own curve and the index's best completed
value: its cost does not grow with the study.

It runs beside any sampler (`early_stopping: {"rule": "forecast"}`) and inside asha,
hyperband and bohb as an extra stop (`ForecastStop` below) after their own decision.
"""

from __future__ import annotations

import math
from typing import Any

from app.engine.base import Action, Decision, History, Sampler, Scheduler, Suggestion, TrialRecord
from app.engine.base import oriented as orient
from app.engine.forecast import Z_INTERVAL, forecast

DEFAULT_THRESHOLD = 0.05
DEFAULT_MIN_POINTS = 3


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class ForecastRule(Scheduler):
    """Options (beside `rule`): `threshold` (0.05): stop below this probability of
    beating the incumbent; `min_points` (3) reported points before a forecast;
    `min_trials` (1) completed trials before there is an incumbent to beat;
    `warmup_steps` (0); `horizon`: the step a curve ends at (default: the fidelity's
    max, else the last step the completed trials reached)."""

    name = "forecast"
    # The horizon without a fidelity is read from finished trials' curves.
    needs_intermediate = True

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        if not trial.intermediate:
            return Decision.keep_going()
        options = self.context.options
        step = max(trial.intermediate)
        if step < float(options.get("warmup_steps", 0.0)):
            return Decision.keep_going()
        direction = self.context.direction
        index = history.index(direction)
        completed = index.completed_rows()
        if len(completed) < int(options.get("min_trials", 1)) or not completed:
            return Decision.keep_going()
        incumbent = completed[0][0]  # oriented: smaller is better
        if not math.isfinite(incumbent):
            return Decision.keep_going()
        horizon = self._horizon(history, trial)
        if horizon is None or step >= horizon:
            return Decision.keep_going()
        curve = {s: orient(v, direction) for s, v in trial.intermediate.items()}
        predicted = forecast(
            curve, horizon, min_points=int(options.get("min_points", DEFAULT_MIN_POINTS))
        )
        if predicted is None:
            return Decision.keep_going()
        chance = predicted.probability_below(incumbent)
        threshold = float(options.get("threshold", DEFAULT_THRESHOLD))
        if chance >= threshold:
            return Decision.keep_going()
        sign = 1.0 if direction == "minimize" else -1.0
        mean = sign * predicted.final
        low, high = sorted(
            (
                sign * (predicted.final - Z_INTERVAL * predicted.final_spread),
                sign * (predicted.final + Z_INTERVAL * predicted.final_spread),
            )
        )
        shown = predicted.to_dict()
        if sign < 0:  # stored in the metric's own terms, as the dashboard draws it
            shown["mean"] = [-v for v in shown["mean"]]
            shown["low"], shown["high"] = (
                [-v for v in shown["high"]],
                [-v for v in shown["low"]],
            )
        extra: dict[str, Any] = {"forecast": {**shown, "probability": round(chance, 5)}}
        metric = self.context.metric
        return Decision(
            Action.STOP,
            f"stopped at step {step:g}: {metric} forecast at step {horizon:g} is "
            f"{_fmt(mean)} (90 % interval {_fmt(low)} to {_fmt(high)}; "
            f"{', '.join(predicted.families[:3])}); the probability of beating the best "
            f"{_fmt(sign * incumbent)} is {chance:.1%}, below {threshold:.1%}",
            extra=extra,
        )

    def _horizon(self, history: History, trial: TrialRecord) -> float | None:
        explicit = self.context.options.get("horizon")
        if explicit is not None:
            return float(explicit)
        if self.context.fidelity is not None:
            return float(self.context.fidelity.max)
        return history.index(self.context.direction).last_step()


class ForecastStop(Scheduler):
    """A multi-fidelity scheduler with the forecast rule as an extra stop: the rule is
    asked only when the scheduler lets the trial go on, and its stop keeps the
    scheduler's bookkeeping (rung results) on the trial. Its horizon is the fidelity's
    max, so it needs no finished curves beyond what the scheduler needs (none)."""

    needs_intermediate = False

    def __init__(self, primary: Scheduler, rule: ForecastRule) -> None:
        super().__init__(primary.context)
        self.primary = primary
        self.rule = rule
        self.name = primary.name

    def suggest(self, history: History, sampler: Sampler) -> Suggestion:
        return self.primary.suggest(history, sampler)

    def pending_resume(self, history: History) -> Suggestion | None:
        return self.primary.pending_resume(history)

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        decision = self.primary.on_result(history, trial)
        if decision.action != Action.CONTINUE:
            return decision
        stop = self.rule.on_result(history, trial)
        if stop.action != Action.STOP:
            return decision
        return Decision(
            Action.STOP,
            stop.reason,
            rung=decision.rung,
            extra={**decision.extra, **stop.extra},
        )
