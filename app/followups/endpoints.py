from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from app.auth.dependencies import CurrentAccess
from app.db.session import SessionDep, unit_of_work
from app.followups import common, promotion, reuse
from app.followups.schemas import (
    ExtendRequest,
    FollowupRead,
    LineageRead,
    PromoteRequest,
    WarmStartRequest,
)
from app.projects import service as projects

router = APIRouter(prefix="/studies", tags=["follow-ups"])


@router.post("/{study_id}/promote", status_code=status.HTTP_201_CREATED)
async def promote(study_id: int, body: PromoteRequest, request: Request) -> FollowupRead:
    """A new study at a larger world size whose first trials are this study's best configs,
    scaled by the rule (learning rate, global batch, warm-up) and queued."""
    return await unit_of_work(request, lambda session: promotion.promote(session, study_id, body))


@router.post("/{study_id}/warm_start")
async def warm_start(
    study_id: int, body: WarmStartRequest, request: Request, access: CurrentAccess
) -> FollowupRead:
    """Reuse parent studies: their results as observations, or their best configs queued.
    Parents the caller may not see are not found."""

    def work(session: Session) -> FollowupRead:
        parents = list(dict.fromkeys(body.parents))
        projects.check_visible_studies(session, access, parents, "parents", indexed=True)
        return reuse.warm_start(session, study_id, body)

    return await unit_of_work(request, work)


@router.post("/{study_id}/extend")
async def extend(study_id: int, body: ExtendRequest, request: Request) -> FollowupRead:
    """More trials; with a narrower space, a new study that reuses the results inside it."""
    return await unit_of_work(request, lambda session: reuse.extend(session, study_id, body))


@router.get("/{study_id}/lineage")
def lineage(study_id: int, session: SessionDep, access: CurrentAccess) -> LineageRead:
    return projects.visible_lineage(session, access, common.lineage(session, study_id))
