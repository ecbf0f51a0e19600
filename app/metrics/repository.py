"""Every SQL query about metric points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.types import utcnow
from app.metrics.models import MetricPoint


class MetricRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_points(self, trial_id: int, points: Sequence[tuple[str, float, float]]) -> None:
        """Inserts (name, step, value) rows; a (name, step) already stored is left as it is,
        so that a re-sent batch changes nothing."""
        if not points:
            return
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {"trial_id": trial_id, "name": name, "step": step, "value": value, "created_at": now}
            for name, step, value in points
        ]
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            stmt: Any = pg_insert(MetricPoint).on_conflict_do_nothing(
                index_elements=["trial_id", "name", "step"]
            )
        elif dialect == "sqlite":
            stmt = sqlite_insert(MetricPoint).on_conflict_do_nothing(
                index_elements=["trial_id", "name", "step"]
            )
        else:  # pragma: no cover - other databases are not supported
            stmt = insert(MetricPoint)
        self.session.execute(stmt, rows)

    def page(
        self, trial_id: int, name: str | None, since: int, limit: int
    ) -> list[MetricPoint]:
        stmt = select(MetricPoint).where(MetricPoint.trial_id == trial_id, MetricPoint.id > since)
        if name:
            stmt = stmt.where(MetricPoint.name == name)
        return list(self.session.scalars(stmt.order_by(MetricPoint.id).limit(limit)))

    def series(self, trial_id: int, name: str) -> list[tuple[float, float]]:
        """(step, value) of one metric of one trial, in step order."""
        stmt = (
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.trial_id == trial_id, MetricPoint.name == name)
            .order_by(MetricPoint.step)
        )
        return [(float(s), float(v)) for s, v in self.session.execute(stmt)]

    def series_for_trials(self, trial_ids: Iterable[int], name: str) -> dict[int, dict[float, float]]:
        ids = list(trial_ids)
        out: dict[int, dict[float, float]] = defaultdict(dict)
        if not ids:
            return out
        for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 900]
            stmt = select(MetricPoint.trial_id, MetricPoint.step, MetricPoint.value).where(
                MetricPoint.trial_id.in_(chunk), MetricPoint.name == name
            )
            for trial_id, step, value in self.session.execute(stmt):
                out[trial_id][float(step)] = float(value)
        return out

    def names(self, trial_id: int) -> list[str]:
        stmt = select(MetricPoint.name).where(MetricPoint.trial_id == trial_id).distinct()
        return sorted(self.session.scalars(stmt))
