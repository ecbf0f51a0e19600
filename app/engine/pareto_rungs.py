"""Successive halving with several objectives: a rung is ranked by non-dominated sorting,
crowding distance breaking ties within a front (Schmucker et al. 2021, "Multi-objective
Asynchronous Successive Halving", the NSGA-II-style ranking they evaluate; Deb et al.
2002 for the crowding distance). Called by ASHA/Hyperband's stop mode
(app/engine/schedulers/hyperband.py) for a study with several objectives.

A trial passes a rung when its place in that order, among every trial of its bracket
that reached the rung, is within the top 1/eta (at least one), as ASHA's cutoff does for
one objective. Each objective's value at a rung is its point at the step where the first
objective crossed the rung's level (else its latest point before), kept on the trial in
`extra["rung_objectives"]` so that later decisions read it from the history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.engine import pareto
from app.engine.base import Action, Decision, History, StudyContext, TrialRecord
from app.engine.index import bracket_of

KEY = "rung_objectives"
_EPS = 1e-9


def value_at(curve: Mapping[float, float], step: float) -> float | None:
    """The point at `step`, else the latest one before it."""
    if step in curve:
        return curve[step]
    before = [s for s in curve if s <= step]
    return curve[max(before)] if before else None


def vectors(trial: TrialRecord) -> dict[str, list[float | None]]:
    raw = trial.extra.get(KEY) or {}
    return {str(k): list(v) for k, v in raw.items()}


def decide(
    context: StudyContext,
    history: History,
    trial: TrialRecord,
    levels: Sequence[float],
    eta: float,
    new: Sequence[int],
    extra: Mapping[str, Any],
) -> Decision:
    """Stop or continue `trial`, which just reached the rungs `new`."""
    bracket = bracket_of(trial)
    mine = vectors(trial)
    steps = sorted(trial.intermediate)
    for rung in new:
        step = next(s for s in steps if s >= levels[rung] * (1 - _EPS))
        first = trial.intermediate[step]
        rest = [value_at(trial.curves.get(o.metric, {}), step) for o in context.objectives[1:]]
        mine[str(rung)] = [first, *rest]
    extra = {**extra, KEY: mine}
    index = history.index(context.direction)
    reason = ""
    for rung in new:
        others = [
            vectors(r)[str(rung)]
            for r in index.records.values()
            if r.id != trial.id and bracket_of(r) == bracket and str(rung) in vectors(r)
        ]
        rows = [*others, mine[str(rung)]]
        points = pareto.oriented_matrix(
            [[math.inf if v is None or math.isnan(v) else v for v in row] for row in rows],
            context.directions,
        )
        # A missing or NaN value is the worst on its objective, whatever the direction.
        points[~np.isfinite(points)] = math.inf
        order = pareto.constrained_order(points, [0.0] * len(rows)).tolist()
        place = order.index(len(rows) - 1) + 1
        top = max(1, int(len(rows) // eta))
        front = int(pareto.nondominated_ranks(points)[-1])
        where = f"rung {rung} ({levels[rung]:g})"
        if place > top:
            return Decision(
                Action.STOP,
                f"stopped at {where}: place {place} of {len(rows)} by non-dominated rank "
                f"(front {front}) and crowding distance; the top {top} (1/{eta:g}) go on",
                rung=rung,
                extra=extra,
            )
        reason = (
            f"continued at {where}: place {place} of {len(rows)} by non-dominated rank "
            f"(front {front}) and crowding distance, within the top {top}"
        )
    return Decision(Action.CONTINUE, reason, rung=max(new), extra=extra)
