from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import FaithfulFloat, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.trials.models import Trial


class StudyState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # no new trials; running ones go on
    STOPPED = "stopped"  # stopped by a person; running trials are cancelled
    COMPLETED = "completed"  # a limit or the target ended it

    @property
    def is_finished(self) -> bool:
        return self in (StudyState.STOPPED, StudyState.COMPLETED)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=StudyState.RUNNING, index=True)
    # Why the study is in its state ("max_trials reached (50)", "stopped by admin").
    state_reason: Mapped[str] = mapped_column(Text, default="")

    metric: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(8))
    aggregate: Mapped[str] = mapped_column(String(8), default="last")
    # Several objectives ([{metric, direction, aggregate}], the first is metric/direction
    # above) and constraints ([{metric, op, value}]); None for one objective and none.
    objectives: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    constraints: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # The hypervolume's reference point as given (None: derived from the results).
    reference_point: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    space: Mapped[dict[str, Any]] = mapped_column(JSON)
    strategy: Mapped[dict[str, Any]] = mapped_column(JSON)
    early_stopping: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    fidelity: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    execution: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Free-form user data and lineage (parents, promotions) for follow-up studies.
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A person's Markdown notes (app/core/notes.py), who wrote them last and when. Deferred:
    # the asks and tells that lock this row never read them.
    notes: Mapped[str] = mapped_column(Text, default="", deferred=True, deferred_group="notes")
    notes_updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, deferred=True, deferred_group="notes"
    )
    notes_updated_by: Mapped[str | None] = mapped_column(
        String(200), nullable=True, deferred=True, deferred_group="notes"
    )
    parent_study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"), nullable=True, index=True
    )
    seed: Mapped[int] = mapped_column(Integer)
    # The project the study belongs to (app/projects): who may see and act on it.
    project_id: Mapped[int] = mapped_column(Integer, default=0, index=True)

    # Counters kept on the row (under its lock) so that listing and asking stay O(1).
    next_number: Mapped[int] = mapped_column(Integer, default=0)
    best_value: Mapped[float | None] = mapped_column(FaithfulFloat, nullable=True)
    best_trial_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Trials finished since the best value last improved (for max_trials_without_improvement).
    trials_since_improvement: Mapped[int] = mapped_column(Integer, default=0)
    # Fidelity units granted to trials so far (for max_budget and compute accounting).
    budget_used: Mapped[float] = mapped_column(FaithfulFloat, default=0.0)
    # Bumped (under the row lock) whenever a trial changes in a way a strategy can see;
    # each API process keeps the study's history in memory and reloads only the trials
    # whose `history_version` is newer than the one it holds.
    history_version: Mapped[int] = mapped_column(Integer, default=0)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    trials: Mapped[list[Trial]] = relationship(
        back_populates="study", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
