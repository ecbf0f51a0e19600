from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from app.db.session import SessionDep, unit_of_work
from app.population import service
from app.population.schemas import PopulationRead, ReplayRequest, ScheduleRead
from app.trials import service as trials
from app.trials.schemas import TrialRead

router = APIRouter(tags=["population"])


@router.get("/studies/{study_id}/population")
def population(study_id: int, session: SessionDep) -> PopulationRead:
    """A pbt or pb2 study's members: schedules, boundary scores, exploits (donor -> receiver)."""
    return service.population(session, study_id)


@router.get("/trials/{trial_id}/schedule")
def schedule(trial_id: int, session: SessionDep) -> ScheduleRead:
    """The hyperparameter values a trial's weights were trained with, per fidelity interval."""
    return service.schedule(session, trials.get_trial(session, trial_id))


@router.post("/studies/{study_id}/replay", status_code=status.HTTP_201_CREATED)
async def replay(study_id: int, request: Request, body: ReplayRequest | None = None) -> TrialRead:
    """Queues one trial that runs a member's schedule (the best's by default) from scratch."""

    def work(session: Session) -> TrialRead:
        trial = service.replay(session, study_id, body or ReplayRequest())
        return TrialRead.model_validate(trial)

    return await unit_of_work(request, work)
