"""Every SQL query about metric points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.types import utcnow
from app.metrics.models import MetricPoint

_KEY = ["trial_id", "name", "step"]
# Rows keep the batch's order (WITH ORDINALITY), so that ids, and `since` cursors, follow it.
_PG_INSERT_ARRAYS = text(
    """
    INSERT INTO metric_points (trial_id, name, step, value, created_at)
    SELECT :trial_id, u.name, u.step, u.value, :created_at
    FROM unnest(CAST(:names AS varchar[]), CAST(:steps AS float8[]), CAST(:values AS float8[]))
        WITH ORDINALITY AS u(name, step, value, position)
    ORDER BY u.position
    ON CONFLICT (trial_id, name, step) DO NOTHING
    """
)


class MetricRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_points(self, trial_id: int, points: Sequence[tuple[str, float, float]]) -> None:
        """Inserts (name, step, value) rows; a (name, step) already stored is left as it is,
        so that a re-sent batch changes nothing."""
        if not points:
            return
        now = utcnow()
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            # Three arrays and one statement: an executemany runs one INSERT per row on
            # psycopg, and a multi-row VALUES is compiled anew for every batch; both cost
            # several times more than this for a batch of 100.
            self.session.execute(
                _PG_INSERT_ARRAYS,
                {
                    "trial_id": trial_id,
                    "created_at": now,
                    "names": [name for name, _, _ in points],
                    "steps": [float(step) for _, step, _ in points],
                    "values": [float(value) for _, _, value in points],
                },
            )
            return
        rows: list[dict[str, Any]] = [
            {"trial_id": trial_id, "name": name, "step": step, "value": value, "created_at": now}
            for name, step, value in points
        ]
        if dialect == "sqlite":
            stmt: Any = sqlite_insert(MetricPoint).on_conflict_do_nothing(index_elements=_KEY)
        else:  # pragma: no cover - other databases are not supported
            stmt = insert(MetricPoint)
        self.session.execute(stmt, rows)

    def page(self, trial_id: int, name: str | None, since: int, limit: int) -> list[MetricPoint]:
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

    def series_for_trials(
        self, trial_ids: Iterable[int], name: str
    ) -> dict[int, dict[float, float]]:
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
