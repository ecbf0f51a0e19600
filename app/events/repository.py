"""Every SQL query about events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.events.models import Event


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        study_id: int,
        kind: str,
        actor: str,
        reason: str = "",
        trial_id: int | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Event:
        event = Event(
            study_id=study_id,
            trial_id=trial_id,
            kind=kind,
            actor=actor,
            reason=reason,
            from_state=from_state,
            to_state=to_state,
            data=data or {},
        )
        self.session.add(event)
        return event

    def for_trial(self, trial_id: int, since: int = 0, limit: int = 1000) -> list[Event]:
        stmt = (
            select(Event)
            .where(Event.trial_id == trial_id, Event.id > since)
            .order_by(Event.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))
