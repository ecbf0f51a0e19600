"""What the Pareto-front and hypervolume figures need, read through the trials domain's
Pareto set (`app.trials.front`, one cached computation per study version), so the chart,
`GET /studies/{id}/pareto` and the trials table always agree on who is on the front."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from sqlalchemy.orm import Session

from app.plots.builders.pareto import Goal, ParetoPoint, hypervolume_history, pareto_front
from app.plots.repository import TrialRow
from app.studies.models import Study
from app.trials import front as fronts
from app.trials.repository import TrialRepository


def _broken(report: list[dict[str, Any]]) -> list[str]:
    """ "memory_gib 26 (limit <= 24, over by 2)" for each constraint a trial broke."""
    out = []
    for c in report:
        if c.get("violation"):
            out.append(
                f"{c['metric']} {c['value']:.4g} (limit {c['op']} {c['limit']:.4g}, "
                f"over by {c['violation']:.3g})"
            )
    return out


def pareto_figure(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    found = fronts.front_of(session, study)
    goals = found.goals
    points = []
    for trial_id, number, _state, value, raw_values, raw_constraints in TrialRepository(
        session
    ).results(study.id):
        vector = goals.vector(value, raw_values)
        if vector is None:
            continue
        points.append(
            ParetoPoint(
                trial_id=trial_id,
                number=number,
                values=vector,
                feasible=goals.feasible(True, raw_constraints),
                on_front=trial_id in found.pareto_ids,
                broken=_broken(goals.constraint_report(raw_constraints)),
            )
        )
    return pareto_front(
        points, [Goal(o.metric, o.direction) for o in goals.objectives], found.reference
    )


def hypervolume_figure(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    found = fronts.front_of(session, study)
    volumes = found.history()
    count = min(len(found.numbers), len(volumes))
    return hypervolume_history(
        found.numbers[:count],
        volumes[:count],
        found.reference,
        found.source,
        [Goal(o.metric, o.direction) for o in found.goals.objectives],
    )
