"""Change notifications for live views.

Services call `notify(session, study_id, kind, data)`; the notes are delivered only after
the session commits, so a listener never sees a change that was rolled back. Listeners
(the SSE hub, a Redis fan-out) subscribe with `subscribe`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Change:
    study_id: int
    kind: str  # study | trial | metrics | event | log
    data: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Change], None]
_listeners: list[Listener] = []
_PENDING = "tunelab_pending_changes"


def subscribe(listener: Listener) -> Callable[[], None]:
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def notify(session: Session, study_id: int, kind: str, data: dict[str, Any] | None = None) -> None:
    session.info.setdefault(_PENDING, []).append(Change(study_id, kind, data or {}))


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    changes: list[Change] = session.info.pop(_PENDING, [])
    for change in changes:
        for listener in list(_listeners):
            try:
                listener(change)
            except Exception:
                continue


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
