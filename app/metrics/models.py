from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import BigIntId, FaithfulFloat, UTCDateTime, utcnow


class MetricPoint(Base):
    """One value of one metric of one trial at one step. NaN and +/-inf are kept."""

    __tablename__ = "metric_points"
    # The unique key makes re-sent batches idempotent and serves reads by trial.
    __table_args__ = (UniqueConstraint("trial_id", "name", "step"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[float] = mapped_column(FaithfulFloat)
    value: Mapped[float] = mapped_column(FaithfulFloat)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
