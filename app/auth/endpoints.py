from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.auth import service
from app.auth.dependencies import CurrentToken, forget_cached_tokens
from app.auth.models import Role
from app.auth.repository import TokenRepository
from app.auth.schemas import TokenCreate, TokenCreated, TokenList, TokenRead
from app.db.session import SessionDep

# Admin only: `authorize` maps every /tokens route to the admin role.
router = APIRouter(tags=["auth"])


@router.get("/auth/me")
def me(token: CurrentToken) -> TokenRead:
    """The caller's token (the dashboard's sign-in check); `anonymous` without auth."""
    return TokenRead.model_validate(token)


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: SessionDep, request: Request) -> TokenCreated:
    token, secret = service.create_token(session, Role(body.role), body.name)
    read = TokenCreated.model_validate(
        {**TokenRead.model_validate(token).model_dump(), "token": secret}
    )
    session.commit()
    forget_cached_tokens(request)
    return read


@router.get("/tokens")
def list_tokens(session: SessionDep, include_revoked: bool = False) -> TokenList:
    tokens = TokenRepository(session).list(include_revoked)
    return TokenList(items=[TokenRead.model_validate(t) for t in tokens])


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: int, session: SessionDep, request: Request) -> Response:
    service.revoke(session, token_id)
    session.commit()
    forget_cached_tokens(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
