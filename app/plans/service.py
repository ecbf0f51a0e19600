"""Budget previews of studies."""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session

from app.engine.base import Fidelity
from app.engine.plan import make_plan
from app.plans.schemas import PlanRead
from app.studies import service as studies


def plan_for_study(session: Session, study_id: int) -> PlanRead:
    study = studies.get_study(session, study_id)
    fidelity = Fidelity(**study.fidelity) if study.fidelity else None
    max_budget = study.limits.get("max_budget")
    plan = make_plan(
        study.strategy,
        study.early_stopping,
        fidelity,
        studies.trial_cap(study),
        float(max_budget) if max_budget is not None else None,
    )
    return PlanRead.model_validate({**dataclasses.asdict(plan), "budget_used": study.budget_used})
