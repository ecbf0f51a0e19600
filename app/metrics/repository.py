"""Every SQL query about metric points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.types import utcnow
from app.engine.base import TrialState
from app.metrics.models import MetricPoint
from app.studies.models import Study
from app.trials.models import Trial

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

# A report in one statement, so that a batch costs one round trip besides BEGIN and
# COMMIT: read the trial and its study, store the points as above, and refresh the
# heartbeat and last objective step of a running trial. The final SELECT sees the rows
# as they were before the statement, which is what the decision needs (the update
# changes no state). Without the trial, nothing is written and no row comes back.
_PG_REPORT = text(
    """
    WITH target AS (
        SELECT t.id, t.state AS trial_state, s.id AS study_id, s.state AS study_state,
            s.state_reason AS study_state_reason, s.metric, s.strategy, s.early_stopping
        FROM trials t JOIN studies s ON s.id = t.study_id
        WHERE t.id = :trial_id
    ),
    batch AS (
        SELECT u.name, u.step, u.value, u.position
        FROM unnest(CAST(:names AS varchar[]), CAST(:steps AS float8[]),
            CAST(:values AS float8[])) WITH ORDINALITY AS u(name, step, value, position)
    ),
    stored AS (
        INSERT INTO metric_points (trial_id, name, step, value, created_at)
        SELECT target.id, batch.name, batch.step, batch.value, :now
        FROM target CROSS JOIN batch
        ORDER BY batch.position
        ON CONFLICT (trial_id, name, step) DO NOTHING
    ),
    objective AS (
        SELECT max(batch.step) AS step FROM batch JOIN target ON batch.name = target.metric
    ),
    touched AS (
        UPDATE trials SET heartbeat_at = :now,
            last_step = GREATEST(trials.last_step, objective.step)
        FROM target CROSS JOIN objective
        WHERE trials.id = target.id AND trials.state = :running
    )
    SELECT target.*, objective.step AS objective_step FROM target CROSS JOIN objective
    """
)


def _text_array(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of strings: each quoted, with backslash and double quote
    escaped, so that commas, braces, spaces and the word NULL stay plain text."""
    raw = "".join(items)
    if "\\" in raw or '"' in raw:
        items = [item.replace("\\", "\\\\").replace('"', '\\"') for item in items]
    return '{"' + '","'.join(items) + '"}' if items else "{}"


def _float_array(items: Sequence[float]) -> str:
    """A PostgreSQL float8 array literal. repr() round-trips every double exactly, and its
    nan, inf and -inf are spellings PostgreSQL reads as NaN, Infinity and -Infinity."""
    return "{" + ",".join(map(repr, map(float, items))) + "}"


def _array_params(points: Sequence[tuple[str, float, float]]) -> dict[str, str]:
    """The batch as three array literals (names, steps, values), passed as text: psycopg
    adapts a list element by element in Python, which took half of a report's CPU time."""
    names, steps, values = zip(*points, strict=True) if points else ((), (), ())
    return {
        "names": _text_array(names),
        "steps": _float_array(steps),
        "values": _float_array(values),
    }


@dataclass(frozen=True)
class ReportedTrial:
    """What a metrics report needs to decide, read in the statement that stored it."""

    trial_id: int
    trial_state: str
    study_id: int
    study_state: str
    study_state_reason: str
    metric: str
    strategy: dict[str, Any]
    early_stopping: dict[str, Any] | None
    # The highest step of the study's objective metric in the batch; None without one.
    objective_step: float | None


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
                {"trial_id": trial_id, "created_at": now, **_array_params(points)},
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

    def report(
        self, trial_id: int, points: Sequence[tuple[str, float, float]], now: datetime
    ) -> ReportedTrial | None:
        """Stores (name, step, value) rows as `insert_points` does and, while the trial runs,
        refreshes its heartbeat and raises `last_step` to the batch's highest objective
        step. Returns the trial and study as they were, or None when the trial is unknown.

        Plain statements, not ORM objects: a report is the API's most frequent request."""
        if self.session.get_bind().dialect.name == "postgresql":
            row = self.session.execute(
                _PG_REPORT,
                {
                    "trial_id": trial_id,
                    "now": now,
                    "running": TrialState.RUNNING.value,
                    **_array_params(points),
                },
            ).first()
            if row is None:
                return None
            return ReportedTrial(
                trial_id=row.id,
                trial_state=row.trial_state,
                study_id=row.study_id,
                study_state=row.study_state,
                study_state_reason=row.study_state_reason,
                metric=row.metric,
                strategy=row.strategy,
                early_stopping=row.early_stopping,
                objective_step=row.objective_step,
            )
        found = self.session.execute(
            select(
                Trial.state,
                Trial.study_id,
                Study.state,
                Study.state_reason,
                Study.metric,
                Study.strategy,
                Study.early_stopping,
            )
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.id == trial_id)
        ).first()
        if found is None:
            return None
        trial_state, study_id, study_state, reason, metric, strategy, early_stopping = found
        self.insert_points(trial_id, points)
        objective_step = max((step for name, step, _ in points if name == metric), default=None)
        last_step: Any = Trial.last_step
        if objective_step is not None:
            last_step = case(
                ((Trial.last_step.is_(None)) | (Trial.last_step < objective_step), objective_step),
                else_=Trial.last_step,
            )
        self.session.execute(
            update(Trial)
            .where(Trial.id == trial_id, Trial.state == TrialState.RUNNING)
            .values(heartbeat_at=now, last_step=last_step)
            .execution_options(synchronize_session=False)
        )
        return ReportedTrial(
            trial_id=trial_id,
            trial_state=trial_state,
            study_id=study_id,
            study_state=study_state,
            study_state_reason=reason,
            metric=metric,
            strategy=strategy,
            early_stopping=early_stopping,
            objective_step=objective_step,
        )

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
