"""Budget previews of studies."""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session

from app.engine.base import Fidelity
from app.engine.plan import make_plan
from app.plans.schemas import PlanRead
from app.studies import service as studies
from app.studies.settings import study_settings


def plan_for_study(session: Session, study_id: int) -> PlanRead:
    study = studies.get_study(session, study_id)
    settings = study_settings(study)
    fidelity = Fidelity(**settings.fidelity.model_dump()) if settings.fidelity else None
    plan = make_plan(
        settings.strategy, fidelity, studies.trial_cap(study), settings.limits.max_budget
    )
    return PlanRead.model_validate({**dataclasses.asdict(plan), "budget_used": study.budget_used})
