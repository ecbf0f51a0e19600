"""Every SQL query of a study's export and import: reads of its rows by study or trial,
and bulk inserts of the rows an import brings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, undefer_group

from app.db.base import Base
from app.events.models import Event
from app.metrics.models import MetricPoint
from app.studies.models import Study
from app.trials.models import Trial, TrialLog

INSERT_CHUNK = 2000


class TransferRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def trials_of_study(self, study_id: int) -> list[Trial]:
        """Every trial of the study in number order, notes included (one query)."""
        stmt = select(Trial).where(Trial.study_id == study_id).options(undefer_group("notes"))
        return list(self.session.scalars(stmt.order_by(Trial.number)))

    def points_of(self, trial_ids: Sequence[int]) -> Iterator[MetricPoint]:
        stmt = select(MetricPoint).where(MetricPoint.trial_id.in_(trial_ids))
        return iter(self.session.scalars(stmt.order_by(MetricPoint.id)))

    def logs_of(self, trial_ids: Sequence[int]) -> Iterator[TrialLog]:
        stmt = select(TrialLog).where(TrialLog.trial_id.in_(trial_ids))
        return iter(self.session.scalars(stmt.order_by(TrialLog.offset)))

    def events_of_study(self, study_id: int) -> Iterator[Event]:
        stmt = select(Event).where(Event.study_id == study_id).order_by(Event.id)
        return iter(self.session.scalars(stmt))

    def insert_rows(self, model: type[Base], rows: list[dict[str, Any]]) -> None:
        """Bulk inserts (executemany), a chunk at a time."""
        for start in range(0, len(rows), INSERT_CHUNK):
            self.session.execute(insert(model), rows[start : start + INSERT_CHUNK])

    def set_best_trial(
        self, study_id: int, best_trial_id: int | None, updated_at: datetime
    ) -> None:
        # A Core update naming updated_at, so that the model's onupdate keeps the source's.
        self.session.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(best_trial_id=best_trial_id, updated_at=updated_at)
        )
