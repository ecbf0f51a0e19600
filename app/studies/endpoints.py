from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.auth.dependencies import CurrentAccess, CurrentToken
from app.db.session import SessionDep, unit_of_work
from app.projects import service as projects
from app.studies import service
from app.studies.models import StudyState
from app.studies.schemas import StudyCreate, StudyList, StudyRead, StudyUpdate

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_study(body: StudyCreate, request: Request, access: CurrentAccess) -> StudyRead:
    def work(session: Session) -> StudyRead:
        project_id = projects.project_for_new_study(session, access, body.project)
        if body.parent_study_id is not None:
            projects.check_visible_studies(
                session, access, [body.parent_study_id], "parent_study_id"
            )
        return service.read_study(
            session, service.create_study(session, body, project_id=project_id)
        )

    return await unit_of_work(request, work)


@router.get("")
def list_studies(
    session: SessionDep,
    access: CurrentAccess,
    state: StudyState | None = None,
    project: Annotated[
        str | None, Query(description="Only this project's studies (name or id).")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StudyList:
    """The studies of the projects the caller sees, newest first."""
    shown = projects.visible_filter(session, access, project)
    items, total = service.list_studies(
        session, offset, limit, state.value if state else None, shown
    )
    return StudyList(items=items, total=total)


@router.get("/{study_id}")
def get_study(study_id: int, session: SessionDep) -> StudyRead:
    return service.read_study(session, service.get_study(session, study_id))


@router.patch("/{study_id}")
async def update_study(
    study_id: int, body: StudyUpdate, request: Request, caller: CurrentToken
) -> StudyRead:
    def work(session: Session) -> StudyRead:
        study = service.update_study(session, study_id, body, editor=caller.name)
        return service.read_study(session, study)

    return await unit_of_work(request, work)


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_study(study_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.delete_study(session, study_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
