from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.auth import service as auth
from app.auth.dependencies import CurrentToken
from app.core.errors import Gone, Invalid
from app.core.notes import check_tag
from app.db.session import SessionDep, read_in_thread, unit_of_work
from app.engine.base import TrialState
from app.events import service as events
from app.events.schemas import EventList
from app.studies import service as studies
from app.trials import export, fencing, front, service
from app.trials.repository import ORDERINGS
from app.trials.schemas import (
    DecisionRead,
    HypervolumeRead,
    LogChunkIn,
    LogEndRead,
    LogRead,
    ParetoRead,
    TrialAsked,
    TrialComplete,
    TrialCreate,
    TrialDetail,
    TrialList,
    TrialRead,
    TrialUpdate,
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
        trial, resume = service.ask(session, study_id, body or TrialCreate())
        service.remember_study_of(trial)
        token = auth.mint_trial_token(session, trial, caller)
        return TrialAsked.model_validate(trial).model_copy(
            update={"resume": resume, "token": token}
        )

    # The ask may find the study finished (a limit reached): that verdict is kept (Gone).
    return await unit_of_work(request, work, commit_on=(Gone,), study_id=study_id)


@router.get("/studies/{study_id}/trials")
def list_trials(
    study_id: int,
    session: SessionDep,
    state: Annotated[list[TrialState] | None, Query()] = None,
    order_by: Annotated[str, Query(description=f"One of {', '.join(ORDERINGS)}")] = "number",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    tag: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only trials with this tag.")
    ] = None,
) -> TrialList:
    """A page of the study's trials. Each carries its tags and the first characters of its
    note (`has_notes`, `notes_excerpt`); the note itself comes with `GET /trials/{id}`."""
    if order_by not in ORDERINGS:
        raise Invalid(f"order_by must be one of {', '.join(ORDERINGS)}", field="order_by")
    states = [s.value for s in state] if state else None
    if tag is not None:
        try:
            tag = check_tag(tag)
        except ValueError as exc:
            raise Invalid(str(exc), field="tag") from exc
    items, next_cursor = service.page_trials(
        session, study_id, states, order_by, limit, cursor, tag
    )
    # Objectives, constraints and the Pareto flag of each trial (app/trials/front.py).
    return TrialList(items=front.read_trials(session, items), next_cursor=next_cursor)


@router.get(
    "/studies/{study_id}/trials.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/json": {}},
            "description": "One row per trial (CSV, or a JSON array with ?format=json)",
        }
    },
)
def export_trials(
    study_id: int,
    request: Request,
    session: SessionDep,
    format: Literal["csv", "json"] = "csv",
) -> StreamingResponse:
    """One row per trial: number, params, value, state, start, end, duration, best so far,
    tags and notes. Streamed a page of trials at a time: constant memory at any study size."""
    study = studies.get_study(session, study_id)
    # The stream reads in short transactions of its own; this one must not stay open
    # for the whole download (on SQLite it holds the write lock).
    session.close()
    sessions = request.app.state.database.sessions
    names = export.param_names(sessions, study)
    rows = export.trial_rows(sessions, study, names)
    if format == "json":
        return StreamingResponse(export.json_lines(rows), media_type="application/json")
    return StreamingResponse(
        export.csv_lines(names, rows, export.objective_columns(study)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}-trials.csv"'},
    )


@router.get("/trials/{trial_id}")
def get_trial(trial_id: int, session: SessionDep) -> TrialDetail:
    """The trial, with its Markdown note."""
    return front.read_detail(session, service.get_trial(session, trial_id))


@router.patch("/trials/{trial_id}")
async def update_trial(
    trial_id: int, body: TrialUpdate, request: Request, caller: CurrentToken
) -> TrialDetail:
    """Sets the trial's notes (Markdown, at most 64 KiB) and tags (replaced as given).
    Not a lifecycle change: it takes neither the study's turn nor its row lock, and the
    strategy's history is left as it is."""

    def work(session: Session) -> TrialDetail:
        trial = service.annotate(session, trial_id, body, editor=caller.name)
        return front.read_detail(session, trial)

    return await unit_of_work(request, work)


@router.post("/trials/{trial_id}/complete")
async def complete(trial_id: int, body: TrialComplete, request: Request) -> TrialRead:
    """Tell the trial's result. `metrics` and `log` store a runner's last points and
    console chunk in the same transaction, before the value is taken from the points."""

    attempt = fencing.attempt_of(request)

    def work(session: Session) -> TrialRead:
        fencing.check_attempt(session, trial_id, attempt, lock_study=True)
        trial = service.complete(session, trial_id, body)
        return front.read_one(session, trial, cache=False)  # not committed yet

    # A tell waits for its study's turn (`unit_of_work`), so it must know the study first.
    study_id = service.known_study_of(trial_id)
    if study_id is None:
        study_id = await read_in_thread(request, lambda s: service.study_of(s, trial_id))
    return await unit_of_work(request, work, study_id=study_id)


@router.post("/trials/{trial_id}/heartbeat")
async def heartbeat(trial_id: int, request: Request) -> DecisionRead:
    attempt = fencing.attempt_of(request)

    def work(session: Session) -> DecisionRead:
        fencing.check_attempt(session, trial_id, attempt)
        decision = service.heartbeat(session, trial_id)
        return DecisionRead(decision=decision.action, reason=decision.reason)

    return await unit_of_work(request, work)


@router.post("/trials/{trial_id}/cancel")
async def cancel(trial_id: int, request: Request) -> TrialRead:
    def work(session: Session) -> TrialRead:
        return TrialRead.model_validate(service.cancel(session, trial_id))

    return await unit_of_work(request, work)


@router.post("/trials/{trial_id}/retry", status_code=status.HTTP_201_CREATED)
async def retry(trial_id: int, request: Request) -> TrialRead:
    """Enqueue a new trial with the same params."""

    def work(session: Session) -> TrialRead:
        return TrialRead.model_validate(service.retry(session, trial_id))

    return await unit_of_work(request, work)


@router.get("/trials/{trial_id}/events")
def trial_events(
    trial_id: int, session: SessionDep, since: Annotated[int, Query(ge=0)] = 0
) -> EventList:
    """State changes and scheduler decisions, with who made them and why."""
    service.get_trial(session, trial_id)
    return events.for_trial(session, trial_id, since)


@router.post("/trials/{trial_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
async def append_log(trial_id: int, body: LogChunkIn, request: Request) -> Response:
    """Append console output; re-sending a chunk at the same offset changes nothing."""
    attempt = fencing.attempt_of(request)

    def work(session: Session) -> None:
        fencing.check_attempt(session, trial_id, attempt)
        service.append_log(session, trial_id, body.offset, body.text)

    await unit_of_work(request, work)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/trials/{trial_id}/logs")
def read_log(
    trial_id: int,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=4_000_000)] = 1_000_000,
) -> LogRead:
    trial = service.get_trial(session, trial_id)
    text, next_offset = service.read_log(session, trial.id, offset, limit)
    return LogRead(
        offset=offset,
        next_offset=next_offset,
        text=text,
        complete=TrialState(trial.state).is_finished,
    )


@router.get("/trials/{trial_id}/log/end")
def log_end(trial_id: int, session: SessionDep) -> LogEndRead:
    """The byte offset where the trial's console output continues (a resumed run's)."""
    return LogEndRead(offset=service.log_end(session, trial_id))


@router.get("/studies/{study_id}/pareto")
def pareto_set(study_id: int, session: SessionDep) -> ParetoRead:
    """The study's best trials: the feasible completed trials no other one dominates (one
    objective: those with the best feasible value), with the hypervolume they enclose
    against the reference point (given at creation, or derived and said so)."""
    return front.pareto_read(session, study_id)


@router.get("/studies/{study_id}/hypervolume")
def hypervolume_history(study_id: int, session: SessionDep) -> HypervolumeRead:
    """The hypervolume after each trial with a result, in trial-number order, all against
    the same reference point."""
    return front.hypervolume_read(session, study_id)
