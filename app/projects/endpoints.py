"""Projects and their members. Listing is for every token (each sees its own projects);
the rest needs the admin role of the token's own (`authorize` maps /projects to it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from app.auth.dependencies import CurrentAccess, forget_cached_tokens
from app.auth.models import Role
from app.db.session import SessionDep, unit_of_work
from app.projects import service
from app.projects.schemas import (
    MemberList,
    MemberRead,
    MemberSet,
    ProjectCreate,
    ProjectList,
    ProjectRead,
)

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("")
def list_projects(session: SessionDep, access: CurrentAccess) -> ProjectList:
    """The projects the caller sees, with its role in each."""
    return ProjectList(items=service.list_projects(session, access))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_project(
    body: ProjectCreate, request: Request, access: CurrentAccess
) -> ProjectRead:
    def work(session: Session) -> ProjectRead:
        return service.to_read(service.create_project(session, body.name, body.description), access)

    return await unit_of_work(request, work)


@router.delete("/{project}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project: str, request: Request) -> Response:
    """Deletes an empty project; 409 while it holds studies, and for the default project."""
    await unit_of_work(request, lambda session: service.delete_project(session, project))
    forget_cached_tokens(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{project}/members")
def list_members(project: str, session: SessionDep) -> MemberList:
    return MemberList(items=service.members(session, project))


@router.put("/{project}/members/{token_id}")
async def grant(project: str, token_id: int, body: MemberSet, request: Request) -> MemberRead:
    """Gives the token this role in the project (viewer, member or admin there)."""
    read = await unit_of_work(
        request, lambda session: service.grant(session, project, token_id, Role(body.role))
    )
    # After the commit: tokens' roles are cached with them (app/auth/dependencies.py).
    forget_cached_tokens(request)
    return read


@router.delete("/{project}/members/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(project: str, token_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.revoke(session, project, token_id))
    forget_cached_tokens(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
