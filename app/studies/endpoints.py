from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.db.session import SessionDep
from app.studies import service
from app.studies.models import StudyState
from app.studies.schemas import StudyCreate, StudyList, StudyRead, StudyUpdate

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_study(body: StudyCreate, session: SessionDep) -> StudyRead:
    study = service.create_study(session, body)
    read = service.read_study(session, study)
    session.commit()
    return read


@router.get("")
def list_studies(
    session: SessionDep,
    state: StudyState | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StudyList:
    items, total = service.list_studies(session, offset, limit, state.value if state else None)
    return StudyList(items=items, total=total)


@router.get("/{study_id}")
def get_study(study_id: int, session: SessionDep) -> StudyRead:
    return service.read_study(session, service.get_study(session, study_id))


@router.patch("/{study_id}")
def update_study(study_id: int, body: StudyUpdate, session: SessionDep) -> StudyRead:
    study = service.update_study(session, study_id, body)
    read = service.read_study(session, study)
    session.commit()
    return read


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(study_id: int, session: SessionDep) -> Response:
    service.delete_study(session, study_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
