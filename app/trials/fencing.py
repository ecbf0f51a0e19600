"""Fencing: a run's reports are refused once its trial has moved on without it.

A worker that lost only its connection (a network partition, a paused VM) may come back
after the API took it for lost and re-queued (or failed) its trial. Its runner sends the
run's attempt, the trial's `retries` when the run started, with every report, heartbeat,
log chunk and completion (`X-Tunelab-Attempt`); a request of an attempt that is no longer
the trial's, or for a trial that has failed, is answered 409 with field "attempt", and the
runner ends its process. The old run can therefore neither add points to the new run's
steps (points are keyed by (name, step)) nor fail it with a late completion.

The check runs in the transaction of the write it guards, on the trial's row locked until
that transaction ends: the sweeper cannot re-queue the trial between the check and the
write (a check in a transaction of its own left that window open). Rows are locked in
the order every writer takes them, the study's before the trial's, where the write locks
the study too (a completion).

Requests without the header (scripts using the SDK, older workers) are not checked; a
checked report costs the row lock and a transaction instead of one autocommitted
statement."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Invalid
from app.engine.base import TrialState
from app.studies import service as studies
from app.trials.repository import TrialRepository

ATTEMPT_HEADER = "X-Tunelab-Attempt"


def check_attempt(
    session: Session, trial_id: int, attempt: int | None, *, lock_study: bool = False
) -> None:
    """Raises Conflict when run `attempt` of the trial is over; else keeps the trial's row
    locked (and first the study's, with `lock_study`) until the transaction ends. Nothing
    is checked when `attempt` is None; a trial that does not exist is left to the work
    (its 404)."""
    if attempt is None:
        return
    trials = TrialRepository(session)
    if lock_study:
        found = trials.get(trial_id)
        if found is None:
            return
        studies.get_study_for_update(session, found.study_id)
    trial = trials.get_for_update(trial_id)
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


def attempt_of(request: Request) -> int | None:
    """The attempt the request carries (parsed by `fence`), None when it carries none."""
    return getattr(request.state, "attempt", None)


async def fence(request: Request) -> None:
    """A router dependency: parses the attempt header of trial requests (422 when it is
    not a whole number). The endpoints that write check it in their own transaction."""
    raw = request.headers.get(ATTEMPT_HEADER)
    if raw is None or request.path_params.get("trial_id") is None:
        return
    try:
        request.state.attempt = int(raw)
    except ValueError:
        raise Invalid(f"{ATTEMPT_HEADER} must be a whole number", field="attempt") from None
