from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, status

from app.db.session import SessionDep
from app.studies import service as studies
from app.studies.schemas import StudyRead
from app.transfer import service

router = APIRouter(tags=["transfer"])


@router.get("/studies/{study_id}/export")
def export_study(study_id: int, session: SessionDep) -> dict[str, Any]:
    """Everything the study holds, for `POST /studies/import` on another server."""
    return service.export_study(session, study_id)


@router.post("/studies/import", status_code=status.HTTP_201_CREATED)
def import_study(document: Annotated[dict[str, Any], Body()], session: SessionDep) -> StudyRead:
    """Creates a study from an export, with new ids. Bodies over the server's size limit
    are refused: move big studies with `tunelab import --database-url`."""
    study = service.import_study(session, document)
    read = studies.read_study(session, study)
    session.commit()
    return read
