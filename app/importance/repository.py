"""The queries behind parameter importance: only the columns a fit needs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.engine.base import TrialState
from app.trials.models import Trial


class ImportanceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def count_completed(self, study_id: int) -> int:
        """Completed trials with a value (the cache key: a fit changes only when it grows)."""
        stmt = select(func.count()).where(
            Trial.study_id == study_id,
            Trial.state == TrialState.COMPLETED,
            Trial.value.is_not(None),
        )
        return int(self.session.scalar(stmt) or 0)

    def completed(self, study_id: int) -> list[tuple[dict[str, Any], float]]:
        """(params, value) of the completed trials with a value, in trial order."""
        stmt = (
            select(Trial.params, Trial.value)
            .where(
                Trial.study_id == study_id,
                Trial.state == TrialState.COMPLETED,
                Trial.value.is_not(None),
            )
            .order_by(Trial.number)
        )
        return [(dict(params), float(value)) for params, value in self.session.execute(stmt)]
