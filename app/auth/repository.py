"""Every SQL query about tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role, Token


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: Token) -> Token:
        self.session.add(token)
        self.session.flush()
        return token

    def get(self, token_id: int) -> Token | None:
        return self.session.get(Token, token_id)

    def by_hash(self, token_hash: str) -> Token | None:
        stmt = select(Token).where(Token.token_hash == token_hash, Token.revoked_at.is_(None))
        return self.session.scalars(stmt).first()

    def any_active_person_token(self) -> bool:
        """Whether a viewer, member or admin token exists: then the API requires tokens."""
        stmt = select(Token.id).where(Token.revoked_at.is_(None), Token.role != Role.TRIAL).limit(1)
        return self.session.scalar(stmt) is not None

    def list(self, include_revoked: bool) -> list[Token]:
        stmt = select(Token).where(Token.role != Role.TRIAL)
        if not include_revoked:
            stmt = stmt.where(Token.revoked_at.is_(None))
        return list(self.session.scalars(stmt.order_by(Token.id)))
