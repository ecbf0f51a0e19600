"""Every SQL query about studies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer_group

from app.studies.models import Study
from app.trials.models import Trial


class StudyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, study_id: int) -> Study | None:
        return self.session.get(Study, study_id)

    def get_for_update(self, study_id: int) -> Study | None:
        """Locks the study row until the transaction ends. Asks on one study serialize
        here on PostgreSQL; on SQLite every transaction already holds the write lock."""
        stmt = select(Study).where(Study.id == study_id)
        if self.session.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).first()

    def add(self, study: Study) -> Study:
        self.session.add(study)
        self.session.flush()
        return study

    def delete(self, study: Study) -> None:
        self.session.delete(study)
        self.session.flush()

    def page(
        self,
        offset: int,
        limit: int,
        state: str | None = None,
        projects: frozenset[int] | None = None,
    ) -> tuple[list[Study], int]:
        stmt = select(Study)
        count = select(func.count()).select_from(Study)
        if projects is not None:
            stmt = stmt.where(Study.project_id.in_(projects))
            count = count.where(Study.project_id.in_(projects))
        if state:
            stmt = stmt.where(Study.state == state)
            count = count.where(Study.state == state)
        # A listing shows each study's notes: one query, not one more per study.
        stmt = stmt.options(undefer_group("notes"))
        rows = self.session.scalars(stmt.order_by(Study.id.desc()).offset(offset).limit(limit))
        return list(rows), int(self.session.scalar(count) or 0)

    def trial_counts(self, study_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        ids = list(study_ids)
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        if not ids:
            return counts
        stmt = (
            select(Trial.study_id, Trial.state, func.count())
            .where(Trial.study_id.in_(ids))
            .group_by(Trial.study_id, Trial.state)
        )
        for study_id, state, n in self.session.execute(stmt):
            counts[study_id][state] = int(n)
        return counts

    def running(self) -> list[Study]:
        return list(self.session.scalars(select(Study).where(Study.state == "running")))
