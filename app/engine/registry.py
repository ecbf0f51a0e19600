"""Names of strategies and rules as they appear in a study body, and how to build them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.engine import options
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
from app.engine.samplers.mo import MOTPESampler
from app.engine.samplers.nsga2 import NSGA2Options, NSGA2Sampler
from app.engine.samplers.random import RandomSampler
from app.engine.samplers.sobol import SobolSampler
from app.engine.samplers.tpe import TPESampler
from app.engine.schedulers.forecast import ForecastRule, ForecastStop
from app.engine.schedulers.hyperband import ASHA, BOHB, Hyperband
from app.engine.schedulers.median import MedianStoppingRule
from app.engine.schedulers.pbt import PB2, PB2Options, PBTOptions, PopulationBasedTraining

# Samplers choose configs; `strategy.name` may name one directly.
SAMPLERS: dict[str, type[Sampler]] = {
    "random": RandomSampler,
    "grid": GridSampler,
    "sobol": SobolSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
    # Several objectives and constraints (app/engine/pareto.py).
    "nsga2": NSGA2Sampler,
    "motpe": MOTPESampler,
}

# Multi-fidelity schedulers named by `strategy.name`; they need the study's `fidelity`
# and take their sampler from `strategy.sampler`.
MULTI_FIDELITY: dict[str, type[Scheduler]] = {
    "asha": ASHA,
    "hyperband": Hyperband,
    "bohb": BOHB,
    "pbt": PopulationBasedTraining,
    "pb2": PB2,
}
# Population-based strategies (also multi-fidelity): they change a trial's params when
# they resume it, and need scripts that checkpoint (execution.checkpoint).
POPULATION = frozenset({"pbt", "pb2"})

# Early-stopping rules named by `early_stopping.rule`, usable beside any sampler.
STOPPING_RULES: dict[str, type[Scheduler]] = {
    "median": MedianStoppingRule,
    "forecast": ForecastRule,
}
# Rules the successive-halving schedulers take as an extra stop after their own decision.
EXTRA_STOPS = frozenset({"forecast"})
TAKE_EXTRA_STOPS = frozenset({"asha", "hyperband", "bohb"})

# What each name reads from the body (app/engine/options.py holds them and their defaults).
SAMPLER_OPTIONS: dict[str, type[options.Options]] = {
    "random": options.RandomOptions,
    "grid": options.GridOptions,
    "sobol": options.SobolOptions,
    "tpe": options.TPEOptions,
    "gp": options.GPOptions,
    "nsga2": NSGA2Options,
    "motpe": options.TPEOptions,
}
SCHEDULER_OPTIONS: dict[str, type[options.Options]] = {
    "asha": options.ASHAOptions,
    "hyperband": options.HyperbandOptions,
    "bohb": options.BOHBOptions,
    "pbt": PBTOptions,
    "pb2": PB2Options,
}
RULE_OPTIONS: dict[str, type[options.Options]] = {
    "median": options.MedianOptions,
    "forecast": options.ForecastOptions,
}

# Keys of `strategy` that are not options of the strategy itself.
_NOT_OPTIONS = ("name", "seed")


@dataclass(frozen=True)
class StrategySettings:
    """A study's `strategy` and `early_stopping`, parsed: every option with its default.

    An option whose default depends on the study (Hyperband's `brackets`: one per rung;
    BOHB's `min_points`) is absent rather than None, so the strategy derives it."""

    name: str
    seed: int | None
    options: Mapping[str, Any]
    early_stopping: Mapping[str, Any] | None = None

    @property
    def sampler(self) -> str:
        """The sampler of new configs: the strategy itself, or a scheduler's `sampler`."""
        return str(self.options.get("sampler", self.name))

    def as_body(self) -> dict[str, Any]:
        """The `strategy` of a study body with these settings (for a follow-up study)."""
        seed = {} if self.seed is None else {"seed": self.seed}
        return {"name": self.name, **seed, **self.options}

    def sampler_body(self) -> dict[str, Any]:
        """The `strategy` of a study body that runs this strategy's sampler alone, with
        the sampler's options (a multi-fidelity study whose fidelity is set outright)."""
        fields = (
            SAMPLER_OPTIONS[self.sampler].model_fields if self.sampler in SAMPLER_OPTIONS else {}
        )
        seed = {} if self.seed is None else {"seed": self.seed}
        own = {key: value for key, value in self.options.items() if key in fields}
        return {"name": self.sampler, **seed, **own}


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


def is_bounded(settings: StrategySettings) -> bool:
    """Whether the strategy's sampler may offer finitely many configs (a grid), so that
    `Strategy.capacity()` is worth building the strategy for."""
    sampler = SAMPLERS.get(settings.sampler)
    return sampler is not None and sampler.capacity is not Sampler.capacity


def _sampler_of(name: str, strategy: Mapping[str, Any]) -> Any:
    if name in SCHEDULER_OPTIONS:
        return strategy.get("sampler", SCHEDULER_OPTIONS[name].model_fields["sampler"].default)
    return name


def _options_model(name: str, sampler: str) -> type[options.Options]:
    if name in SCHEDULER_OPTIONS:
        return options.combined(SCHEDULER_OPTIONS[name], SAMPLER_OPTIONS[sampler])
    return SAMPLER_OPTIONS[name]


def _dump(model: options.Options) -> dict[str, Any]:
    return model.model_dump(exclude_none=True)


def parse(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None, has_fidelity: bool
) -> StrategySettings:
    """The settings of a study body; raises ConfigError naming the field when the strategy
    cannot be built or an option is unknown or out of range (`strategy.sed`)."""
    name = strategy.get("name", "random")
    if not isinstance(name, str) or (name not in SAMPLERS and name not in MULTI_FIDELITY):
        raise ConfigError(
            "strategy.name", f"unknown strategy {name!r}; use one of {', '.join(strategy_names())}"
        )
    if name in MULTI_FIDELITY and not has_fidelity:
        raise ConfigError("fidelity", f"the {name} strategy needs a fidelity (param, min, max)")
    sampler = _sampler_of(name, strategy)
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ConfigError(
            "strategy.sampler",
            f"unknown sampler {sampler!r}; use one of {', '.join(sorted(SAMPLERS))}",
        )
    raw = {key: value for key, value in strategy.items() if key not in _NOT_OPTIONS}
    parsed = options.parse(_options_model(name, sampler), raw, "strategy")
    rule_options = None
    if early_stopping:
        rule = early_stopping.get("rule")
        if not isinstance(rule, str) or rule not in STOPPING_RULES:
            known = ", ".join(sorted(STOPPING_RULES)) or "none available"
            raise ConfigError("early_stopping.rule", f"unknown rule {rule!r}; use one of: {known}")
        if name in MULTI_FIDELITY and (rule not in EXTRA_STOPS or name not in TAKE_EXTRA_STOPS):
            takes = ", ".join(sorted(EXTRA_STOPS)) if name in TAKE_EXTRA_STOPS else "none"
            raise ConfigError(
                "early_stopping",
                f"the {name} strategy already stops trials early; extra stops it takes: {takes}",
            )
        rule_options = _dump(options.parse(RULE_OPTIONS[rule], early_stopping, "early_stopping"))
    return StrategySettings(name, strategy.get("seed"), _dump(parsed), rule_options)


def parse_stored(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None
) -> StrategySettings:
    """The settings of a stored study, read as `options.load_stored` reads: unknown keys
    of an older version are dropped, so a study that ran before still builds."""
    name = str(strategy.get("name", "random"))
    sampler = _sampler_of(name, strategy)
    buildable = name in SAMPLERS or name in MULTI_FIDELITY
    if not buildable or not isinstance(sampler, str) or sampler not in SAMPLERS:
        # Not buildable; the names are kept so that a read can still show them.
        return StrategySettings(name, strategy.get("seed"), {}, early_stopping)
    raw = {key: value for key, value in strategy.items() if key not in _NOT_OPTIONS}
    parsed = options.load_stored(_options_model(name, sampler), raw)
    rule_options = None
    if early_stopping:
        rule_model = RULE_OPTIONS.get(str(early_stopping.get("rule")))
        rule_options = (
            _dump(options.load_stored(rule_model, early_stopping))
            if rule_model is not None
            else dict(early_stopping)
        )
    return StrategySettings(name, strategy.get("seed"), _dump(parsed), rule_options)


def validate(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None, has_fidelity: bool
) -> None:
    """Raises ConfigError naming the field when the strategy cannot be built."""
    parse(strategy, early_stopping, has_fidelity)


def decides_on_results(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None
) -> bool:
    """Whether `build` gives a scheduler that may stop or pause a trial on its intermediate
    results; without one a metrics report needs no strategy at all."""
    return strategy.get("name") in MULTI_FIDELITY or bool(early_stopping)


def build(
    strategy: Mapping[str, Any], early_stopping: Mapping[str, Any] | None, context: StudyContext
) -> Strategy:
    """The strategy of a stored study; `context.options` is replaced by the parsed options
    (defaults included), so strategies read every option they know."""
    settings = parse_stored(strategy, early_stopping)
    context = replace(context, options=settings.options)
    sampler_type = SAMPLERS[settings.sampler]
    if sampler_type is TPESampler and context.multi:
        # `tpe` on a study with several objectives or constraints ranks its results by
        # non-dominated sorting and feasibility (Optuna does the same).
        sampler_type = MOTPESampler
    sampler = sampler_type(context)
    scheduler: Scheduler
    if settings.name in MULTI_FIDELITY:
        scheduler = MULTI_FIDELITY[settings.name](context)
        extra_rule = str((settings.early_stopping or {}).get("rule"))
        if extra_rule in EXTRA_STOPS and settings.name in TAKE_EXTRA_STOPS:
            rule_context = replace(context, options=dict(settings.early_stopping or {}))
            scheduler = ForecastStop(scheduler, ForecastRule(rule_context))
    elif settings.early_stopping:
        rule = str(settings.early_stopping["rule"])
        rule_context = replace(context, options={**settings.options, **settings.early_stopping})
        scheduler = STOPPING_RULES[rule](rule_context)
    else:
        scheduler = NoScheduler(context)
    return Strategy(sampler, scheduler)
