from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.dependencies import CurrentToken, forget_cached_tokens
from app.auth.models import Role
from app.auth.schemas import TokenCreate, TokenCreated, TokenList, TokenRead
from app.db.session import SessionDep, unit_of_work

# Admin only: `authorize` maps every /tokens route to the admin role.
router = APIRouter(tags=["auth"])


@router.get("/auth/me")
def me(token: CurrentToken) -> TokenRead:
    """The caller's token (the dashboard's sign-in check); `anonymous` without auth."""
    return TokenRead.model_validate(token)


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, request: Request) -> TokenCreated:
    def work(session: Session) -> TokenCreated:
        token, secret = service.create_token(session, Role(body.role), body.name)
        return TokenCreated.model_validate(
            {**TokenRead.model_validate(token).model_dump(), "token": secret}
        )

    read = await unit_of_work(request, work)
    # After the commit: a request in between would cache the tokens as they were.
    forget_cached_tokens(request)
    return read


@router.get("/tokens")
def list_tokens(session: SessionDep, include_revoked: bool = False) -> TokenList:
    return TokenList(
        items=[TokenRead.model_validate(t) for t in service.list_tokens(session, include_revoked)]
    )


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.revoke(session, token_id))
    # After the commit: a request in between would cache the token as still valid.
    forget_cached_tokens(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
