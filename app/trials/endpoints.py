from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.auth import service as auth
from app.auth.dependencies import CurrentToken
from app.core.errors import Gone, Invalid
from app.db.session import SessionDep, in_session
from app.engine.base import TrialState
from app.events.repository import EventRepository
from app.events.schemas import EventList, EventRead
from app.studies import service as studies
from app.trials import export, service
from app.trials.repository import ORDERINGS, TrialRepository
from app.trials.schemas import (
    DecisionRead,
    LogChunkIn,
    LogRead,
    TrialAsked,
    TrialComplete,
    TrialCreate,
    TrialList,
    TrialRead,
)

router = APIRouter(tags=["trials"])


@router.post("/studies/{study_id}/trials", status_code=status.HTTP_201_CREATED)
async def ask(
    study_id: int,
    request: Request,
    caller: CurrentToken,
    body: Annotated[TrialCreate | None, Body()] = None,
) -> TrialAsked:
    """Ask for the next trial (empty body), run your own config, or import a result."""

    def work(session: Session) -> TrialAsked:
        try:
            trial, resume = service.ask(session, study_id, body or TrialCreate())
        except Gone:
            # The ask may have found the study finished (a limit reached): keep that verdict.
            session.commit()
            raise
        token = auth.mint_trial_token(session, trial, caller)
        read = TrialAsked.model_validate(trial).model_copy(
            update={"resume": resume, "token": token}
        )
        session.commit()
        return read

    return await in_session(request, work)


@router.get("/studies/{study_id}/trials")
def list_trials(
    study_id: int,
    session: SessionDep,
    state: Annotated[list[TrialState] | None, Query()] = None,
    order_by: Annotated[str, Query(description=f"One of {', '.join(ORDERINGS)}")] = "number",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> TrialList:
    if order_by not in ORDERINGS:
        raise Invalid(f"order_by must be one of {', '.join(ORDERINGS)}", field="order_by")
    studies.get_study(session, study_id)
    try:
        items, next_cursor = TrialRepository(session).page(
            study_id, [s.value for s in state] if state else None, order_by, limit, cursor
        )
    except (ValueError, TypeError) as exc:
        raise Invalid("the cursor is not one this server gave out", field="cursor") from exc
    return TrialList(items=[TrialRead.model_validate(t) for t in items], next_cursor=next_cursor)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


@router.get("/studies/{study_id}/trials.csv", response_model=None)
def export_trials(
    study_id: int, session: SessionDep, format: Literal["csv", "json"] = "csv"
) -> Response | list[dict[str, Any]]:
    """One row per trial: number, params, value, state, start, end, duration, best so far."""
    study = studies.get_study(session, study_id)
    columns, rows = export.trial_rows(session, study)
    if format == "json":
        return [{k: _json_safe(v) for k, v in row.items()} for row in rows]
    return Response(
        export.to_csv(columns, rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}-trials.csv"'},
    )


@router.get("/trials/{trial_id}")
def get_trial(trial_id: int, session: SessionDep) -> TrialRead:
    return TrialRead.model_validate(service.get_trial(session, trial_id))


@router.post("/trials/{trial_id}/complete")
async def complete(trial_id: int, body: TrialComplete, request: Request) -> TrialRead:
    """Tell the trial's result. `metrics` and `log` store a runner's last points and
    console chunk in the same transaction, before the value is taken from the points."""

    def work(session: Session) -> TrialRead:
        read = TrialRead.model_validate(service.complete(session, trial_id, body))
        session.commit()
        return read

    return await in_session(request, work)


@router.post("/trials/{trial_id}/heartbeat")
def heartbeat(trial_id: int, session: SessionDep) -> DecisionRead:
    decision = service.heartbeat(session, trial_id)
    session.commit()
    return DecisionRead(decision=decision.action, reason=decision.reason)


@router.post("/trials/{trial_id}/cancel")
def cancel(trial_id: int, session: SessionDep) -> TrialRead:
    trial = service.cancel(session, trial_id)
    read = TrialRead.model_validate(trial)
    session.commit()
    return read


@router.post("/trials/{trial_id}/retry", status_code=status.HTTP_201_CREATED)
def retry(trial_id: int, session: SessionDep) -> TrialRead:
    """Enqueue a new trial with the same params."""
    trial = service.retry(session, trial_id)
    read = TrialRead.model_validate(trial)
    session.commit()
    return read


@router.get("/trials/{trial_id}/events")
def trial_events(
    trial_id: int, session: SessionDep, since: Annotated[int, Query(ge=0)] = 0
) -> EventList:
    """State changes and scheduler decisions, with who made them and why."""
    service.get_trial(session, trial_id)
    events = EventRepository(session).for_trial(trial_id, since)
    return EventList(
        items=[EventRead.model_validate(e) for e in events],
        cursor=events[-1].id if events else since,
    )


@router.post("/trials/{trial_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
def append_log(trial_id: int, body: LogChunkIn, session: SessionDep) -> Response:
    """Append console output; re-sending a chunk at the same offset changes nothing."""
    service.append_log(session, trial_id, body.offset, body.text)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/trials/{trial_id}/logs")
def read_log(
    trial_id: int,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=4_000_000)] = 1_000_000,
) -> LogRead:
    trial = service.get_trial(session, trial_id)
    text, next_offset = TrialRepository(session).read_log(trial.id, offset, limit)
    return LogRead(
        offset=offset,
        next_offset=next_offset,
        text=text,
        complete=TrialState(trial.state).is_finished,
    )
