from __future__ import annotations

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
