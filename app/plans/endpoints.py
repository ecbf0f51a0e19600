from __future__ import annotations

from fastapi import APIRouter

from app.db.session import SessionDep
from app.plans import service
from app.plans.schemas import PlanRead

router = APIRouter(tags=["studies"])


@router.get("/studies/{study_id}/plan")
def study_plan(study_id: int, session: SessionDep) -> PlanRead:
    """Budget preview: rungs, trials and budget per rung, expected and worst-case total."""
    return service.plan_for_study(session, study_id)
