from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import BigIntId, UTCDateTime, utcnow


class Event(Base):
    """A state change or decision, with who made it and why. Study-level events have no trial."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_trial", "trial_id", "id"),
        Index("ix_events_study", "study_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), nullable=True
    )
    # created | started | state | decision | heartbeat_timeout | retried | resumed | study
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
