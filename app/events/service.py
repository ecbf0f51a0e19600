"""Reading the event log: state changes and decisions, with who made them and why."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.events.repository import EventRepository
from app.events.schemas import EventList, EventRead


def for_trial(session: Session, trial_id: int, since: int = 0) -> EventList:
    """The trial's events after the cursor `since`, and the cursor of the last one."""
    events = EventRepository(session).for_trial(trial_id, since)
    return EventList(
        items=[EventRead.model_validate(e) for e in events],
        cursor=events[-1].id if events else since,
    )
