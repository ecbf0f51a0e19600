"""A small lock-step simulation that drives a strategy like workers do through the API."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from app.engine import registry
from app.engine.base import Action, Fidelity, SearchExhausted, StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
        "width": {"type": "int", "low": 8, "high": 128, "step": 8},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "step": 0.01},
        "act": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
        "epochs": {"type": "fixed", "value": 27},
    }
)
FIDELITY = Fidelity(param="epoch", min=1, max=27, reduction_factor=3)

SAMPLER_NAMES = ["random", "grid", "sobol", "tpe", "gp", "nsga2", "motpe"]
# (strategy name, strategy options, early_stopping) for every scheduler.
SCHEDULERS: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("none", {}, None),
    ("median", {}, {"rule": "median", "min_trials": 3}),
    ("asha", {"mode": "stop"}, None),
    ("asha", {"mode": "pause"}, None),
    ("hyperband", {"mode": "stop"}, None),
    ("hyperband", {"mode": "pause"}, None),
    ("bohb", {"mode": "stop"}, None),
    ("bohb", {"mode": "pause"}, None),
    ("pbt", {"population_size": 4, "perturbation_interval": 9}, None),
    ("pb2", {"population_size": 4, "perturbation_interval": 9}, None),
    # The forecast rule beside a sampler, and inside asha as an extra stop.
    ("forecast", {}, {"rule": "forecast"}),
    ("asha", {"mode": "stop"}, {"rule": "forecast"}),
]


def final_loss(params: dict[str, Any]) -> float:
    act = {"relu": 0.0, "tanh": 0.1, "gelu": 0.05}[params["act"]]
    return (
        (math.log10(params["lr"]) + 2) ** 2 / 4
        + (params["width"] - 64) ** 2 / 4096
        + (params["momentum"] - 0.9) ** 2
        + act
    )


def loss_at(params: dict[str, Any], step: float) -> float:
    return final_loss(params) + 1.0 / step


def build(
    sampler: str,
    scheduler: str,
    options: dict[str, Any],
    early: dict[str, Any] | None,
    seed: int = 3,
    aggregate: str = "last",
    space: SearchSpace = SPACE,
) -> MemoryStudy:
    multi = scheduler in registry.MULTI_FIDELITY
    # Contract tests run in seconds: the model-based samplers start after 5 results.
    strategy = {"name": scheduler if multi else sampler, "n_startup_trials": 5, **options}
    if multi:
        strategy["sampler"] = sampler
    context = StudyContext(
        space=space,
        direction="minimize",
        metric="loss",
        seed=seed,
        options={k: v for k, v in strategy.items() if k != "name"},
        fidelity=FIDELITY if multi or early else None,
        max_trials=40,
    )
    return MemoryStudy(registry.build(strategy, early, context), context, aggregate=aggregate)


@dataclass
class Run:
    study: MemoryStudy
    log: list[tuple[Any, ...]] = field(default_factory=list)


def simulate(study: MemoryStudy, max_trials: int = 30, workers: int = 3) -> Run:
    """Workers report one epoch at a time, round robin, until max_trials have been created
    and nothing more can be resumed."""
    run = Run(study)
    slots: list[int | None] = [None] * workers
    steps: dict[int, int] = {}
    idle_rounds = 0
    while idle_rounds < 2:
        progressed = False
        for slot in range(workers):
            if slots[slot] is None:
                can_create = study.history.count() < max_trials
                try:
                    asked = study.ask(can_create=can_create)
                except SearchExhausted:  # a population that is complete, as the service does
                    asked = None
                if asked is None:
                    continue
                record, resumed = asked
                run.log.append(("ask", record.id, resumed, record.budget, dict(record.params)))
                slots[slot] = record.id
                steps.setdefault(record.id, 0)
            trial_id = slots[slot]
            assert trial_id is not None
            record = study.history.get(trial_id)
            budget = record.budget if record.budget is not None else FIDELITY.max
            step = steps[trial_id] + 1
            steps[trial_id] = step
            progressed = True
            decision = study.report(trial_id, {float(step): loss_at(dict(record.params), step)})
            run.log.append(("report", trial_id, step, decision.action.value, decision.rung))
            if decision.action != Action.CONTINUE:
                slots[slot] = None
            elif step >= budget:
                study.tell(trial_id, loss_at(dict(record.params), step), TrialState.COMPLETED)
                slots[slot] = None
        idle_rounds = 0 if progressed else idle_rounds + 1
    return run
