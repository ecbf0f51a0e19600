"""Names of strategies and rules as they appear in a study body, and how to build them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.base import (
    Decision,
    History,
    NoScheduler,
    Sampler,
    Scheduler,
    StudyContext,
    Suggestion,
    TrialRecord,
)
from app.engine.errors import ConfigError
from app.engine.samplers.gp import GPSampler
from app.engine.samplers.grid import GridSampler
from app.engine.samplers.random import RandomSampler
from app.engine.samplers.sobol import SobolSampler
from app.engine.samplers.tpe import TPESampler
from app.engine.schedulers import hyperband
from app.engine.schedulers.hyperband import ASHA, BOHB, Hyperband
from app.engine.schedulers.median import MedianStoppingRule

# Samplers choose configs; `strategy.name` may name one directly.
SAMPLERS: dict[str, type[Sampler]] = {
    "random": RandomSampler,
    "grid": GridSampler,
    "sobol": SobolSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
}

# Multi-fidelity schedulers named by `strategy.name`; they need the study's `fidelity`
# and take their sampler from `strategy.sampler`.
MULTI_FIDELITY: dict[str, type[Scheduler]] = {
    "asha": ASHA,
    "hyperband": Hyperband,
    "bohb": BOHB,
}

# Early-stopping rules named by `early_stopping.rule`, usable beside any sampler.
STOPPING_RULES: dict[str, type[Scheduler]] = {
    "median": MedianStoppingRule,
}

# The sampler a multi-fidelity scheduler uses when `strategy.sampler` is not given.
# BOHB's own model is a TPE on rung results; its sampler serves the random share.
DEFAULT_SAMPLER_FOR: dict[str, str] = {"asha": "random", "hyperband": "random", "bohb": "random"}


@dataclass(frozen=True)
class Strategy:
    sampler: Sampler
    scheduler: Scheduler

    def suggest(self, history: History) -> Suggestion:
        return self.scheduler.suggest(history, self.sampler)

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        return self.scheduler.on_result(history, trial)

    def pending_resume(self, history: History) -> Suggestion | None:
        return self.scheduler.pending_resume(history)

    def capacity(self) -> int | None:
        return self.sampler.capacity()


def strategy_names() -> list[str]:
    return sorted({*SAMPLERS, *MULTI_FIDELITY})


def validate(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None, has_fidelity: bool
) -> None:
    """Raises ConfigError naming the field when the strategy cannot be built."""
    name = strategy.get("name")
    if name not in SAMPLERS and name not in MULTI_FIDELITY:
        raise ConfigError(
            "strategy.name", f"unknown strategy {name!r}; use one of {', '.join(strategy_names())}"
        )
    if name in MULTI_FIDELITY:
        if not has_fidelity:
            raise ConfigError("fidelity", f"the {name} strategy needs a fidelity (param, min, max)")
        sampler = strategy.get("sampler", DEFAULT_SAMPLER_FOR.get(name, "random"))
        if sampler not in SAMPLERS:
            raise ConfigError(
                "strategy.sampler",
                f"unknown sampler {sampler!r}; use one of {', '.join(sorted(SAMPLERS))}",
            )
        hyperband.validate_options(str(name), strategy)
    if early_stopping:
        rule = early_stopping.get("rule")
        if rule not in STOPPING_RULES:
            known = ", ".join(sorted(STOPPING_RULES)) or "none available"
            raise ConfigError("early_stopping.rule", f"unknown rule {rule!r}; use one of: {known}")
        if name in MULTI_FIDELITY:
            raise ConfigError("early_stopping", f"the {name} strategy already stops trials early")
        for option in ("min_trials", "warmup_steps"):
            value = early_stopping.get(option)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ConfigError(f"early_stopping.{option}", "must be a number >= 0")


def decides_on_results(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None
) -> bool:
    """Whether `build` gives a scheduler that may stop or pause a trial on its intermediate
    results; without one a metrics report needs no strategy at all."""
    return strategy.get("name") in MULTI_FIDELITY or bool(early_stopping)


def build(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None, context: StudyContext
) -> Strategy:
    name = strategy["name"]
    scheduler: Scheduler
    if name in MULTI_FIDELITY:
        sampler_name = strategy.get("sampler", DEFAULT_SAMPLER_FOR.get(name, "random"))
        scheduler = MULTI_FIDELITY[name](context)
        return Strategy(SAMPLERS[sampler_name](context), scheduler)
    if early_stopping:
        rule_context = StudyContext(
            **{**context.__dict__, "options": {**context.options, **early_stopping}}
        )
        scheduler = STOPPING_RULES[early_stopping["rule"]](rule_context)
    else:
        scheduler = NoScheduler(context)
    return Strategy(SAMPLERS[name](context), scheduler)
