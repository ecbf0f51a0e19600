from __future__ import annotations

from app.core.schemas import Schema


class ParamImportance(Schema):
    param: str
    importance: float


class ImportanceRead(Schema):
    study_id: int
    method: str
    n_trials: int
    params: list[ParamImportance]
    cached: bool
    note: str
