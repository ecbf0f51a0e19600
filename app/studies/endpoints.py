from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.db.session import SessionDep, unit_of_work
from app.studies import service
from app.studies.models import StudyState
from app.studies.schemas import StudyCreate, StudyList, StudyRead, StudyUpdate

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_study(body: StudyCreate, request: Request) -> StudyRead:
    def work(session: Session) -> StudyRead:
        return service.read_study(session, service.create_study(session, body))

    return await unit_of_work(request, work)


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
async def update_study(study_id: int, body: StudyUpdate, request: Request) -> StudyRead:
    def work(session: Session) -> StudyRead:
        return service.read_study(session, service.update_study(session, study_id, body))

    return await unit_of_work(request, work)


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_study(study_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.delete_study(session, study_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
