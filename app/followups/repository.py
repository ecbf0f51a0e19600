"""The SQL queries of follow-up studies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.studies.models import Study


class LineageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def children(self, study_id: int) -> list[Study]:
        stmt = select(Study).where(Study.parent_study_id == study_id).order_by(Study.id)
        return list(self.session.scalars(stmt))
