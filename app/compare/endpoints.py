"""`GET /studies/{id}/compare/trials` and `GET /studies/{id}/compare/history`: what the
dashboard's compare pages draw, in one lean answer each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.compare import service
from app.compare.schemas import StudyHistory, TrialCompare
from app.db.session import SessionDep

router = APIRouter(tags=["compare"])


@router.get("/studies/{study_id}/compare/trials")
def compare_trials(
    study_id: int,
    session: SessionDep,
    trials: Annotated[
        str | None, Query(description="2 to 4 trial ids of this study, comma-separated")
    ] = None,
    metric: Annotated[
        str | None, Query(max_length=200, description="The curves' metric (default: objective)")
    ] = None,
    points: Annotated[int, Query(ge=10, le=10_000, description="Points per curve at most")] = 2000,
) -> TrialCompare:
    """2-4 trials side by side: each one's curve of `metric` (thinned, its last point
    kept), parameters, values, and decisions and state changes."""
    return service.compare_trials(session, study_id, trials, metric, points)


@router.get("/studies/{study_id}/compare/history")
def study_history(
    study_id: int,
    session: SessionDep,
    points: Annotated[
        int, Query(ge=10, le=20_000, description="Trials shown as markers at most")
    ] = 2000,
) -> StudyHistory:
    """The study's finished trials by number and by time (at most `points` of them: the
    best half and an even sample), the best-so-far staircases (exact) and the best trial."""
    return service.study_history(session, study_id, points)
