"""What the follow-up flows share: ranking, asking inside one transaction, lineage.

The lineage of a study goes into `tags.lineage` (a list of entries, newest last) and
`parent_study_id`."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.errors import Invalid
from app.engine.base import TrialState, oriented
from app.followups.repository import LineageRepository
from app.followups.schemas import FollowupTrial, LineageRead, StudyRef
from app.studies import service as studies
from app.studies.models import Study
from app.studies.repository import StudyRepository
from app.studies.schemas import StudyCreate
from app.studies.settings import study_settings
from app.trials import service as trials
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.trials.schemas import TrialCreate

MAX_ANCESTORS = 100


def ranked_trials(session: Session, study: Study, top_k: int) -> list[Trial]:
    """The best completed trials with a finite value, best first (ties: lower number)."""
    done = TrialRepository(session).in_states(study.id, [TrialState.COMPLETED])
    finite = [t for t in done if t.value is not None and math.isfinite(t.value)]
    finite.sort(key=lambda t: (oriented(float(t.value or 0.0), study.direction), t.number))  # type: ignore[arg-type]
    return finite[:top_k]


def ask_and_flush(session: Session, study_id: int, request: TrialCreate, actor: str) -> Trial:
    trial, _ = trials.ask(session, study_id, request, actor)
    # The next ask re-reads the locked study row; what this one changed must be in it.
    session.flush()
    return trial


def trial_from_parent(
    session: Session,
    study_id: int,
    request: TrialCreate,
    actor: str,
    *,
    parent: Study,
    source: Trial,
    link: str,
    changes: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> FollowupTrial:
    """Creates a trial of `study_id` from `source` of `parent`, noting where it came from
    under `extra[link]`."""
    trial = ask_and_flush(session, study_id, request, actor)
    trials.note_extra(session, trial, {link: {"study_id": parent.id, "trial_id": source.id}}, actor)
    return FollowupTrial(
        trial_id=trial.id,
        number=trial.number,
        params=trial.params,
        parent_study_id=parent.id,
        parent_trial_id=source.id,
        parent_value=source.value,
        changes=changes or [],
        steps=steps or [],
    )


def lineage_entries(study: Study) -> list[dict[str, Any]]:
    entries = (study.tags or {}).get("lineage")
    return list(entries) if isinstance(entries, list) else []


def add_lineage(study: Study, entry: dict[str, Any]) -> None:
    # A new dict, so that the JSON column sees the change.
    study.tags = {**(study.tags or {}), "lineage": [*lineage_entries(study), entry]}


def child_body(parent: Study, **changes: Any) -> StudyCreate:
    """A study body with the parent's objective and settings, and `changes` on top.

    The settings come parsed (`study_settings`): a key an older version stored but no
    model knows any more is left behind instead of making the new body invalid."""
    settings = study_settings(parent)
    body: dict[str, Any] = {
        "name": parent.name,
        "objective": settings.objective.model_dump(),
        # Several objectives and constraints carry over (app/engine/pareto.py).
        "objectives": parent.objectives,
        "constraints": parent.constraints or [],
        "reference_point": parent.reference_point,
        "space": parent.space,
        "strategy": settings.strategy.as_body(),
        "early_stopping": settings.strategy.early_stopping,
        "limits": settings.limits.model_dump(),
        "fidelity": settings.fidelity.model_dump() if settings.fidelity else None,
        "execution": settings.execution.model_dump() if settings.execution else None,
        "tags": {},
        "parent_study_id": parent.id,
        # A follow-up stays in its parent's project (the caller's access was checked there).
        "project": parent.project_id,
    }
    body.update(changes)
    try:
        return StudyCreate.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(
            str(p) for p in first["loc"] if p not in ("float", "int", "categorical", "fixed")
        )
        raise Invalid(f"the new study would be invalid: {first['msg']}", field=field) from None


def lineage(session: Session, study_id: int) -> LineageRead:
    study = studies.get_study(session, study_id)
    ancestors: list[StudyRef] = []
    seen = {study.id}
    current = study
    while current.parent_study_id is not None and len(ancestors) < MAX_ANCESTORS:
        parent = StudyRepository(session).get(current.parent_study_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        ancestors.append(StudyRef(id=parent.id, name=parent.name, state=parent.state))
        current = parent
    children = [
        StudyRef(id=c.id, name=c.name, state=c.state)
        for c in LineageRepository(session).children(study.id)
    ]
    return LineageRead(
        study_id=study.id,
        parent_study_id=study.parent_study_id,
        ancestors=ancestors,
        children=children,
        entries=lineage_entries(study),
    )
