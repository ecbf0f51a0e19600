from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import InputSchema, Schema

# Starts with a letter, so that a name is never taken for an id where either is accepted.
ProjectName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
]
ProjectRole = Literal["viewer", "member", "admin"]


class ProjectCreate(InputSchema):
    name: ProjectName
    description: str = Field(default="", max_length=500)


class ProjectRead(Schema):
    id: int
    name: str
    description: str
    created_at: datetime | None = None
    # The caller's role in the project.
    role: str | None = None
    n_studies: int = 0


class ProjectList(Schema):
    items: list[ProjectRead]


class MemberSet(InputSchema):
    role: ProjectRole


class MemberRead(Schema):
    project_id: int
    token_id: int
    token_name: str
    role: str


class MemberList(Schema):
    items: list[MemberRead]
