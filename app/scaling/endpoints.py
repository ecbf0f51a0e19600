from __future__ import annotations

from fastapi import APIRouter

from app.db.session import SessionDep
from app.scaling import service
from app.scaling.schemas import ConfigScaleRequest, ScaleRead, ScaleRequest

router = APIRouter(tags=["scaling"])


@router.post("/trials/{trial_id}/scale")
def scale_trial(trial_id: int, body: ScaleRequest, session: SessionDep) -> ScaleRead:
    """The trial's config moved to another world size, with every step of the arithmetic."""
    return service.scale_trial(session, trial_id, body)


@router.post("/scale")
def scale_params(body: ConfigScaleRequest) -> ScaleRead:
    """Any config moved to another world size; roles are given next to the params."""
    return service.scale_params(body)
