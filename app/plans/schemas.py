from __future__ import annotations

from typing import Literal

from app.core.schemas import Schema


class RungPlanRead(Schema):
    rung: int
    budget: float
    trials: int
    spent: float


class BracketPlanRead(Schema):
    bracket: int
    share: float
    trials: int
    rungs: list[RungPlanRead]


class PriorPlanRead(Schema):
    """A parameter's prior (the space's `prior`) and how the strategy uses it."""

    param: str
    value: str | int | float | bool
    confidence: Literal["low", "medium", "high"]


class PlanRead(Schema):
    """What the study's strategy will spend: per bracket, trials and budget per rung."""

    strategy: str
    scheduler: str
    mode: str | None
    max_trials: int
    max_budget: float | None
    brackets: list[BracketPlanRead]
    expected_budget: float | None
    worst_case_budget: float | None
    budget_used: float
    notes: list[str]
    priors: list[PriorPlanRead] = []
