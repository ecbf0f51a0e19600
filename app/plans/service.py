"""Budget previews of studies."""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session

from app.engine.base import Fidelity
from app.engine.plan import make_plan
from app.engine.space import SearchSpace
from app.plans.schemas import PlanRead
from app.studies import service as studies
from app.studies.settings import study_settings


def plan_for_study(session: Session, study_id: int) -> PlanRead:
    study = studies.get_study(session, study_id)
    settings = study_settings(study)
    fidelity = Fidelity(**settings.fidelity.model_dump()) if settings.fidelity else None
    plan = make_plan(
        settings.strategy, fidelity, studies.trial_cap(study), settings.limits.max_budget
    )
    space = SearchSpace.from_dict(study.space)
    priors = [
        {"param": p.name, "value": prior.value, "confidence": prior.confidence}
        for p in space.searchable
        if (prior := getattr(p, "prior", None)) is not None
    ]
    notes = list(plan.notes)
    if priors:
        notes.append(_prior_note(settings.strategy.name))
    return PlanRead.model_validate(
        {
            **dataclasses.asdict(plan),
            "notes": notes,
            "budget_used": study.budget_used,
            "priors": priors,
        }
    )


def _prior_note(strategy: str) -> str:
    """How the study's strategy uses its priors (docs/strategies.md)."""
    if strategy in ("tpe", "gp"):
        return (
            f"{strategy} runs the priors' values first, draws half of its start-up configs "
            "from the priors, and weights its acquisition by prior(x) ** (beta / n), a "
            "weight that fades as results come in"
        )
    return "new configs are drawn partly from the priors (PriorBand)"
