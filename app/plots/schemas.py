from __future__ import annotations

from app.core.schemas import Schema, WireFloat


class StudySummary(Schema):
    study_id: int
    best_value: WireFloat | None
    best_trial_id: int | None
    n_trials: int
    trial_counts: dict[str, int]
    compute_used_s: float
    budget_used: float
    compute_saved_s: float
    steps_saved: float
