from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.dependencies import CurrentAccess, CurrentToken, forget_cached_tokens
from app.auth.models import Role
from app.auth.schemas import ProjectRole, TokenCreate, TokenCreated, TokenList, TokenRead
from app.db.session import SessionDep, unit_of_work

# Admin only: `authorize` maps every /tokens route to the admin role.
router = APIRouter(tags=["auth"])


@router.get("/auth/me")
def me(token: CurrentToken, access: CurrentAccess) -> TokenRead:
    """The caller's token (the dashboard's sign-in check); `anonymous` without auth.
    `projects`: the roles granted to it in projects."""
    read = TokenRead.model_validate(token)
    read.projects = [
        ProjectRole(project_id=pid, role=role.value)
        for pid, role in sorted(access.project_roles.items())
    ]
    return read


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, request: Request) -> TokenCreated:
    def work(session: Session) -> TokenCreated:
        token, secret = service.create_token(session, Role(body.role), body.name, body.project)
        return TokenCreated.model_validate(
            {
                **TokenRead.model_validate(token).model_dump(),
                "projects": service.project_roles_of(session, token.id),
                "token": secret,
            }
        )

    read = await unit_of_work(request, work)
    # After the commit: a request in between would cache the tokens as they were.
    forget_cached_tokens(request)
    return read


@router.get("/tokens")
def list_tokens(session: SessionDep, include_revoked: bool = False) -> TokenList:
    tokens = service.list_tokens(session, include_revoked)
    roles = service.project_roles_of_tokens(session, [t.id for t in tokens])
    return TokenList(
        items=[
            TokenRead.model_validate(
                {**TokenRead.model_validate(t).model_dump(), "projects": roles.get(t.id, [])}
            )
            for t in tokens
        ]
    )


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.revoke(session, token_id))
    # After the commit: a request in between would cache the token as still valid.
    forget_cached_tokens(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
