from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import InputSchema, Schema


class TokenCreate(InputSchema):
    role: Literal["viewer", "member", "admin"]
    name: str = Field(default="", max_length=200)


class TokenRead(Schema):
    id: int
    name: str
    role: str
    prefix: str
    trial_id: int | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreated(TokenRead):
    # Shown once: only its hash is stored.
    token: str


class TokenList(Schema):
    items: list[TokenRead]
