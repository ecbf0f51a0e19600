from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import InputSchema, Schema


class TokenCreate(InputSchema):
    role: Literal["viewer", "member", "admin", "none"] = Field(
        description="The token's role in every project; with `project`, its role there only."
    )
    name: str = Field(default="", max_length=200)
    project: str | int | None = Field(
        default=None,
        description="A project (name or id): the token gets `role` in it and none elsewhere.",
    )


class ProjectRole(Schema):
    project_id: int
    role: str


class TokenRead(Schema):
    id: int
    name: str
    role: str
    prefix: str
    trial_id: int | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    # Roles granted in projects, on top of `role` (which holds in every project).
    projects: list[ProjectRole] = Field(default_factory=list)


class TokenCreated(TokenRead):
    # Shown once: only its hash is stored.
    token: str


class TokenList(Schema):
    items: list[TokenRead]
