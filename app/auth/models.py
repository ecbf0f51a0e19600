from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class Role(enum.StrEnum):
    VIEWER = "viewer"  # reads everything
    MEMBER = "member"  # creates studies, asks, reports and tells
    ADMIN = "admin"  # manages tokens and deletes
    # No role of its own: only what it was granted in projects (app/projects).
    NONE = "none"
    # Minted at ask time for one trial: report, heartbeat, log and complete that trial only.
    TRIAL = "trial"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.TRIAL: 0, Role.NONE: 0, Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3}


class Token(Base):
    """An API token. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the secret, so that a person can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    # Set for trial tokens: the one trial they may act on.
    trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def anonymous(self) -> bool:
        """True for the stand-in token of a server that runs without authentication."""
        return self.id == ANONYMOUS_ID

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


ANONYMOUS_ID = -1
BOOTSTRAP_ID = 0
