"""A budget preview: what a study's strategy and limits will spend before any GPU runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.engine import registry
from app.engine.base import Fidelity
from app.engine.schedulers.hyperband import bracket_weights


@dataclass(frozen=True)
class RungPlan:
    rung: int
    budget: float  # fidelity units a trial has had when it reaches this rung
    trials: int  # trials expected to reach it
    spent: float  # fidelity units spent getting those trials from the rung below to here


@dataclass(frozen=True)
class BracketPlan:
    bracket: int
    share: float  # fraction of new trials that start in this bracket
    trials: int
    rungs: list[RungPlan]


@dataclass(frozen=True)
class Plan:
    strategy: str
    scheduler: str
    mode: str | None
    max_trials: int
    max_budget: float | None
    brackets: list[BracketPlan]
    expected_budget: float | None
    worst_case_budget: float | None
    notes: list[str] = field(default_factory=list)


def make_plan(
    strategy: registry.StrategySettings,
    fidelity: Fidelity | None,
    max_trials: int,
    max_budget: float | None,
) -> Plan:
    """Trials per rung follow successive halving: 1/eta of a rung go on (at least one).

    The worst case is every trial reaching the full budget: an asynchronous scheduler
    promotes on the results seen so far, so a run where each new trial beats all earlier
    ones promotes them all."""
    name = strategy.name
    notes: list[str] = []
    scheduler = "none"
    mode: str | None = None
    if name in registry.POPULATION and fidelity is not None:
        # A population trains side by side: each member to the full budget, in intervals.
        scheduler = name
        population = min(int(strategy.options.get("population_size", 8)), max_trials)
        spent = population * fidelity.max
        brackets = [BracketPlan(0, 1.0, population, [RungPlan(0, fidelity.max, population, spent)])]
        expected: float | None = spent
        worst: float | None = spent
        notes.append(
            f"{population} members train to {fidelity.max:g}; exploits copy weights, so the "
            "budget is the population's, whatever the number of exploits"
        )
    elif name in registry.MULTI_FIDELITY and fidelity is not None:
        scheduler = name
        mode = str(strategy.options["mode"])
        levels = fidelity.rungs()
        eta = fidelity.reduction_factor
        # No `brackets` option: one bracket per rung (the options hold ASHA's single one).
        count = max(1, min(int(strategy.options.get("brackets") or len(levels)), len(levels)))
        weights = bracket_weights(len(levels), eta, count)
        brackets = []
        assigned = 0
        for bracket, weight in enumerate(weights):
            last = bracket == len(weights) - 1
            trials = max_trials - assigned if last else round(max_trials * weight)
            assigned += trials
            rungs: list[RungPlan] = []
            reaching = trials
            previous = 0.0
            for rung in range(bracket, len(levels)):
                if rung > bracket:
                    reaching = max(1, int(reaching // eta)) if reaching else 0
                spent = reaching * (levels[rung] - previous)
                rungs.append(RungPlan(rung, levels[rung], reaching, spent))
                previous = levels[rung]
            brackets.append(BracketPlan(bracket, weight, trials, rungs))
        expected = sum(r.spent for b in brackets for r in b.rungs)
        worst = max_trials * fidelity.max
        if mode == "stop":
            notes.append(
                "stop mode grants each trial the full budget; the scheduler ends most early"
            )
        else:
            notes.append("pause mode grants one rung at a time; paused trials free their worker")
    else:
        if strategy.early_stopping:
            scheduler = str(strategy.early_stopping["rule"])
            notes.append(
                f"the {scheduler} rule stops trials early; how many depends on the results"
            )
        budget = fidelity.max if fidelity is not None else None
        rungs = [
            RungPlan(
                0, budget if budget is not None else 0.0, max_trials, max_trials * (budget or 0.0)
            )
        ]
        brackets = [BracketPlan(0, 1.0, max_trials, rungs)]
        expected = max_trials * budget if budget is not None else None
        worst = expected
        if budget is None:
            notes.append("the study has no fidelity: budgets are not counted")
    if max_budget is not None:
        if worst is not None and worst > max_budget:
            notes.append(f"max_budget ends the study after {max_budget:g} fidelity units")
        worst = min(worst, max_budget) if worst is not None else max_budget
        expected = min(expected, max_budget) if expected is not None else None
    return Plan(name, scheduler, mode, max_trials, max_budget, brackets, expected, worst, notes)
