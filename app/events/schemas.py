from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.schemas import Schema


class EventRead(Schema):
    id: int
    study_id: int
    trial_id: int | None
    kind: str
    from_state: str | None
    to_state: str | None
    actor: str
    reason: str
    data: dict[str, Any]
    at: datetime


class EventList(Schema):
    items: list[EventRead]
    cursor: int
