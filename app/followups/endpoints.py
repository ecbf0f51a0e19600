from __future__ import annotations

from fastapi import APIRouter, status

from app.db.session import SessionDep
from app.followups import common, promotion, reuse
from app.followups.schemas import (
    ExtendRequest,
    FollowupRead,
    LineageRead,
    PromoteRequest,
    WarmStartRequest,
)

router = APIRouter(prefix="/studies", tags=["follow-ups"])


@router.post("/{study_id}/promote", status_code=status.HTTP_201_CREATED)
def promote(study_id: int, body: PromoteRequest, session: SessionDep) -> FollowupRead:
    """A new study at a larger world size whose first trials are this study's best configs,
    scaled by the rule (learning rate, global batch, warm-up) and queued."""
    read = promotion.promote(session, study_id, body)
    session.commit()
    return read


@router.post("/{study_id}/warm_start")
def warm_start(study_id: int, body: WarmStartRequest, session: SessionDep) -> FollowupRead:
    """Reuse parent studies: their results as observations, or their best configs queued."""
    read = reuse.warm_start(session, study_id, body)
    session.commit()
    return read


@router.post("/{study_id}/extend")
def extend(study_id: int, body: ExtendRequest, session: SessionDep) -> FollowupRead:
    """More trials; with a narrower space, a new study that reuses the results inside it."""
    read = reuse.extend(session, study_id, body)
    session.commit()
    return read


@router.get("/{study_id}/lineage")
def lineage(study_id: int, session: SessionDep) -> LineageRead:
    return common.lineage(session, study_id)
