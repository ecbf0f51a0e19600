"""Fencing: a run's reports are refused once its trial has moved on without it.

A worker that lost only its connection (a network partition, a paused VM) may come back
after the API took it for lost and re-queued (or failed) its trial. Its runner sends the
run's attempt, the trial's `retries` when the run started, with every report
(`X-Tunelab-Attempt`); a report of an attempt that is no longer the trial's, or for a
trial that has failed, is answered 409 with field "attempt", and the runner ends its
process. The old run can therefore neither add points to the new run's steps (points are
keyed by (name, step)) nor fail it with a late completion.

Requests without the header (scripts using the SDK, older workers) are not checked, and a
checked request costs one primary-key read."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.errors import Conflict, Invalid
from app.db.session import Database
from app.engine.base import TrialState
from app.trials.repository import TrialRepository

ATTEMPT_HEADER = "X-Tunelab-Attempt"


def check_attempt(session: Session, trial_id: int, attempt: int) -> None:
    """Raises Conflict when run `attempt` of the trial is over. A trial that does not
    exist is left to the endpoint (its 404)."""
    trial = TrialRepository(session).get(trial_id)
    if trial is None:
        return
    if trial.retries != attempt:
        raise Conflict(
            f"attempt {attempt} of trial {trial_id} is over: the trial was re-queued and is "
            f"now {trial.state} at attempt {trial.retries}; this run's reports are refused",
            field="attempt",
        )
    if trial.state == TrialState.FAILED:
        raise Conflict(
            f"attempt {attempt} of trial {trial_id} is over: the trial failed "
            f"({trial.error or 'no reason given'}); this run's reports are refused",
            field="attempt",
        )


async def fence(request: Request) -> None:
    """A router dependency: checks the attempt of trial requests that carry one."""
    raw = request.headers.get(ATTEMPT_HEADER)
    trial_id = request.path_params.get("trial_id")
    if raw is None or trial_id is None:
        return
    try:
        attempt = int(raw)
        trial = int(trial_id)
    except ValueError:
        raise Invalid(f"{ATTEMPT_HEADER} must be a whole number", field="attempt") from None
    database: Database = request.app.state.database

    def check() -> None:
        with database.sessions() as session:
            check_attempt(session, trial, attempt)

    await run_in_threadpool(check)
