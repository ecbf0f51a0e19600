"""Population-based training seen whole: members, schedules, exploits, and replays.

Reads what the pbt and pb2 strategies keep on each trial (`extra.pbt`, `extra.replay`,
app/engine/schedulers/pbt.py). A replay is one new trial of the same study that runs a
member's schedule from scratch: it is queued with the schedule's first values and the
strategy pauses it where the values change and resumes it with the next ones, so the
script needs nothing beyond the checkpointing PBT already asks of it. A finished study is
reopened for it, with one more trial allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Conflict, Invalid
from app.engine import lifecycle as rules
from app.engine import registry
from app.engine.base import Direction, TrialState, oriented
from app.engine.schedulers.pbt import KEY, REPLAY, replay_start
from app.population.schemas import (
    Edge,
    Exploit,
    Member,
    PopulationRead,
    ReplayRequest,
    ScheduleEntry,
    ScheduleRead,
)
from app.studies import service as studies
from app.studies.models import Study, StudyState
from app.studies.schemas import StudyUpdate
from app.studies.settings import study_settings
from app.trials import lifecycle
from app.trials.models import Trial
from app.trials.repository import TrialRepository


def _schedule(raw: Any) -> list[ScheduleEntry]:
    return [
        ScheduleEntry(step=float(e["step"]), params=dict(e["params"]))
        for e in raw or []
        if isinstance(e, Mapping)
    ]


def _member(trial: Trial) -> Member:
    extra = trial.extra or {}
    info = extra.get(KEY) or {}
    replay = extra.get(REPLAY) or {}
    schedule = info.get("schedule") if info else replay.get("schedule")
    return Member(
        trial_id=trial.id,
        number=trial.number,
        state=trial.state,
        value=trial.value,
        budget=trial.budget,
        params=dict(trial.params),
        schedule=_schedule(schedule),
        scores=dict(info.get("scores") or {}),
        lineage=[Exploit.model_validate(e) for e in info.get("lineage") or []],
        replay_of=replay.get("trial_id") if replay else None,
    )


def _population_study(session: Session, study_id: int) -> Study:
    study = studies.get_study(session, study_id)
    name = str((study.strategy or {}).get("name"))
    if name not in registry.POPULATION:
        raise Conflict(
            f"study {study.id} runs {name!r}, not a population-based strategy (pbt, pb2)",
            field="strategy",
        )
    return study


def population(session: Session, study_id: int) -> PopulationRead:
    study = _population_study(session, study_id)
    settings = study_settings(study)
    options = settings.strategy.options
    members: list[Member] = []
    replays: list[Member] = []
    edges: list[Edge] = []
    for trial in TrialRepository(session).all_for_study(study.id):
        extra = trial.extra or {}
        if KEY in extra:
            member = _member(trial)
            members.append(member)
            edges.extend(
                Edge(
                    donor_id=e.donor_id,
                    receiver_id=member.trial_id,
                    step=e.step,
                    donor_step=e.donor_step,
                )
                for e in member.lineage
            )
        elif REPLAY in extra:
            replays.append(_member(trial))
    fidelity = settings.fidelity
    interval = options.get("perturbation_interval")
    if interval is None and fidelity is not None:
        interval = fidelity.min
    return PopulationRead(
        strategy=settings.strategy.name,
        metric=study.metric,
        direction=study.direction,
        fidelity_param=fidelity.param if fidelity is not None else None,
        perturbation_interval=interval,
        population_size=options.get("population_size"),
        members=members,
        replays=replays,
        edges=edges,
    )


def schedule(session: Session, trial: Trial) -> ScheduleRead:
    member = _member(trial)
    return ScheduleRead(
        trial_id=trial.id,
        schedule=member.schedule,
        lineage=member.lineage,
        replay_of=member.replay_of,
    )


def study_direction(study: Study) -> Direction:
    return "maximize" if study.direction == "maximize" else "minimize"


def _best_member(session: Session, study: Study) -> Trial | None:
    """The completed member with the best value; else the member whose last boundary
    score is best (a study still running)."""
    best: tuple[tuple[int, float, int], Trial] | None = None
    for trial in TrialRepository(session).all_for_study(study.id):
        info = (trial.extra or {}).get(KEY)
        if not info:
            continue
        if trial.state == TrialState.COMPLETED and trial.value is not None:
            score, tier = float(trial.value), 0
        else:
            scores = {float(k): v for k, v in (info.get("scores") or {}).items() if v is not None}
            if not scores:
                continue
            score, tier = float(scores[max(scores)]), 1
        if not math.isfinite(score):
            continue
        key = (tier, oriented(score, study_direction(study)), trial.number)
        if best is None or key < best[0]:
            best = (key, trial)
    return best[1] if best is not None else None


def replay(session: Session, study_id: int, body: ReplayRequest, actor: str = "api") -> Trial:
    """Queues one trial that runs a member's schedule from scratch (the best member's by
    default); a finished study is reopened for it."""
    _population_study(session, study_id)
    study = studies.get_study_for_update(session, study_id)
    repo = TrialRepository(session)
    if body.trial_id is not None:
        source = repo.get(body.trial_id)
        if source is None or source.study_id != study.id:
            raise Invalid(f"trial {body.trial_id} is not in study {study.id}", field="trial_id")
        if KEY not in (source.extra or {}):
            raise Invalid(
                f"trial {body.trial_id} is not a member of the population", field="trial_id"
            )
    else:
        best = _best_member(session, study)
        if best is None:
            raise Conflict(
                f"study {study.id} has no member with a result to replay yet", field="trial_id"
            )
        source = best
    settings = study_settings(study)
    fidelity = settings.fidelity
    if fidelity is None:  # pragma: no cover - population strategies need one
        raise Conflict("the study has no fidelity", field="fidelity")
    raw = ((source.extra or {}).get(KEY) or {}).get("schedule") or []
    params, budget, extra = replay_start(
        raw, fidelity.max, {"trial_id": source.id, "trial_number": source.number}
    )
    limits = settings.limits.model_dump()
    limits["max_trials"] = max(int(limits["max_trials"]), study.next_number) + 1
    reopen = StudyState(study.state).is_finished
    studies.update_study(
        session,
        study.id,
        StudyUpdate.model_validate({"limits": limits, "state": "running" if reopen else None}),
        actor,
    )
    change = rules.create(
        params, source=f"replay of trial {source.number}", budget=budget, queued=True, extra=extra
    )
    trial = lifecycle.insert(session, study, params, change, actor, "replay")
    session.flush()
    return trial
