from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.db.base import Base
from app.db.types import FaithfulFloat, UTCDateTime, utcnow
from app.engine.base import TrialState

if TYPE_CHECKING:
    from app.studies.models import Study


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        Index("ix_trials_study_state", "study_id", "state"),
        Index("ix_trials_study_version", "study_id", "history_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=TrialState.RUNNING)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[float | None] = mapped_column(FaithfulFloat, nullable=True)
    # Several objectives: every value in the study's order (`value` is the first), and the
    # constraint metrics' values; non-finite numbers as "NaN"/"Infinity" strings
    # (app/trials/results.py), since JSON has no such numbers.
    values: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    constraint_values: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # Fidelity budget currently granted (epochs, data fraction, ...); None without fidelity.
    budget: Mapped[float | None] = mapped_column(FaithfulFloat, nullable=True)
    # Highest rung reached, for multi-fidelity schedulers; -1 before the first.
    rung: Mapped[int] = mapped_column(Integer, default=-1)
    # Data a strategy keeps on its trial (grid index, bracket, ...).
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # suggested | user | imported | retry
    source: Mapped[str] = mapped_column(String(16), default="suggested")
    retries: Mapped[int] = mapped_column(Integer, default=0)
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who runs it: "api" for external clients, "worker-host:slot" for workers.
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_step: Mapped[float | None] = mapped_column(FaithfulFloat, nullable=True)
    # A person's labels (app/core/notes.py); never read by a strategy, so changing them
    # leaves `history_version` alone.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Markdown notes, who wrote them last and when. Deferred: the lifecycle, the history
    # and the listings never load them (a listing reads `notes_excerpt`).
    notes: Mapped[str] = mapped_column(Text, default="", deferred=True, deferred_group="notes")
    notes_updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, deferred=True, deferred_group="notes"
    )
    notes_updated_by: Mapped[str | None] = mapped_column(
        String(200), nullable=True, deferred=True, deferred_group="notes"
    )
    # The note's first characters, loaded only by queries that ask for them
    # (TrialRepository.page); None otherwise.
    notes_excerpt: Mapped[str | None] = query_expression()

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The study's `history_version` when this trial last changed (see Study.history_version).
    history_version: Mapped[int] = mapped_column(Integer, default=0)

    study: Mapped[Study] = relationship(back_populates="trials", lazy="raise")

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()


class TrialLog(Base):
    """A trial's console output in appended chunks; `offset` is the byte offset of the chunk."""

    __tablename__ = "trial_logs"
    __table_args__ = (UniqueConstraint("trial_id", "offset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
