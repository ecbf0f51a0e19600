from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from app.db.session import SessionDep
from app.importance import service
from app.importance.schemas import ImportanceRead

router = APIRouter(tags=["importance"])


@router.get("/studies/{study_id}/importance")
def importance(
    study_id: int, session: SessionDep, method: Literal["fanova", "permutation"] = "fanova"
) -> ImportanceRead:
    """How much each parameter explains of the objective, from the completed trials.
    Cached until another trial completes."""
    loaded = service.load(session, study_id, method)
    if isinstance(loaded, ImportanceRead):
        return loaded
    # End the read before fitting: on SQLite every transaction holds the write lock.
    session.rollback()
    return service.run(loaded)
