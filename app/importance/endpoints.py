from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from app.db.session import SessionDep
from app.importance import service
from app.importance.schemas import ImportanceRead
from app.studies import service as studies

router = APIRouter(tags=["importance"])


@router.get("/studies/{study_id}/importance")
def importance(
    study_id: int, session: SessionDep, method: Literal["fanova", "permutation"] = "fanova"
) -> ImportanceRead:
    """How much each parameter explains of the objective, from the completed trials (at
    most 1,000 of them, an even sample). Cached until another trial completes; the
    dashboard's importance chart shows the same numbers."""
    loaded = service.load(session, studies.get_study(session, study_id), method)
    if isinstance(loaded, ImportanceRead):
        return loaded
    # End the read before fitting: on SQLite every transaction holds the write lock.
    session.rollback()
    return service.run(loaded)
