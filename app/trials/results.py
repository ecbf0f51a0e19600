"""A trial's results under several objectives and constraints, between rows and the engine.

Stored lists keep non-finite numbers as the strings "NaN", "Infinity" and "-Infinity"
(JSON has no such numbers and PostgreSQL's JSON type refuses them); `decode` turns them
back into floats. Which study needs what: `Objectives.of(study)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Invalid
from app.engine import lifecycle as rules
from app.engine import pareto
from app.engine.base import Direction
from app.metrics.repository import MetricRepository

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(values: Sequence[float | None] | None) -> list[Any] | None:
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        if v is None or math.isfinite(v):
            out.append(v)
        else:
            out.append("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
    return out


def decode(raw: Sequence[Any] | None) -> tuple[float | None, ...] | None:
    if raw is None:
        return None
    return tuple(
        None if v is None else (_NON_FINITE[v] if isinstance(v, str) else float(v)) for v in raw
    )


@dataclass(frozen=True)
class Objectives:
    """A study's objectives and constraints, parsed from its row."""

    objectives: tuple[pareto.ObjectiveSpec, ...]
    constraints: tuple[pareto.ConstraintSpec, ...]
    reference_point: tuple[float, ...] | None = None

    @classmethod
    def of(cls, study: Any) -> Objectives:
        raw = study.objectives or [
            {"metric": study.metric, "direction": study.direction, "aggregate": study.aggregate}
        ]
        objectives = tuple(
            pareto.ObjectiveSpec(o["metric"], o["direction"], o.get("aggregate", "last"))
            for o in raw
        )
        constraints = tuple(
            pareto.ConstraintSpec(c["metric"], c["op"], float(c["value"]))
            for c in (study.constraints or [])
        )
        ref = tuple(float(v) for v in study.reference_point) if study.reference_point else None
        return cls(objectives, constraints, ref)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def extended(self) -> bool:
        """Whether trials carry more than `value` (several objectives or constraints)."""
        return self.multi or bool(self.constraints)

    @property
    def directions(self) -> tuple[Direction, ...]:
        return tuple(o.direction for o in self.objectives)

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives] + [c.metric for c in self.constraints]

    def results(
        self,
        curves: Callable[[str], Mapping[float, float]],
        given: Sequence[float] | None = None,
    ) -> tuple[float | None, rules.Results | None]:
        """The trial's `value` and its other results: objectives from `given` (a tell's
        list) or else each objective's points aggregated (last or best), constraints from
        their metrics' last points. None for the results of a plain single-objective study."""
        if given is not None:
            values: list[float | None] = [float(v) for v in given]
        else:
            values = [
                rules.aggregate_value(curves(o.metric), o.aggregate, o.direction)
                for o in self.objectives
            ]
        if not self.extended:
            return values[0], None
        observed: tuple[float | None, ...] | None = None
        if self.constraints:
            observed = tuple(
                rules.aggregate_value(curves(c.metric), "last", "minimize")
                for c in self.constraints
            )
        full = tuple(values) if all(v is not None for v in values) else None
        return values[0], rules.Results(
            values=full if self.multi else None,  # type: ignore[arg-type]
            constraint_values=observed,
        )

    def vector(self, value: float | None, raw_values: Sequence[Any] | None) -> list[float] | None:
        """The trial's objective values as a list (one objective: [value])."""
        if self.multi:
            decoded = decode(raw_values)
            if decoded is None or any(v is None for v in decoded):
                return None
            return [float(v) for v in decoded if v is not None]
        return None if value is None else [value]

    def constraint_report(self, raw: Sequence[Any] | None) -> list[dict[str, Any]]:
        """Per constraint: its limit, the observed value and how far past the limit."""
        observed = list(decode(raw) or ())
        observed += [None] * (len(self.constraints) - len(observed))
        return [
            {
                "metric": c.metric,
                "op": c.op,
                "limit": c.value,
                "value": v,
                "violation": c.violation(v),
            }
            for c, v in zip(self.constraints, observed, strict=False)
        ]

    def feasible(self, has_result: bool, raw: Sequence[Any] | None) -> bool | None:
        if not has_result:
            return None
        return pareto.is_feasible(self.constraints, decode(raw))


def of_trial(
    session: Session,
    study: Any,
    trial_id: int,
    value: float | None,
    values: Sequence[float] | None,
    strict: bool = True,
) -> tuple[float | None, rules.Results | None]:
    """A finishing trial's `value` and other results: `values` (a tell's list, one per
    objective) or `value` (the first objective) as given, the rest from the trial's stored
    points. Raises Invalid naming `values` when they do not fit the objectives."""
    goals = Objectives.of(study)
    metrics = MetricRepository(session)

    def curve(metric: str) -> dict[float, float]:
        return dict(metrics.series(trial_id, metric))

    if values is not None:
        if len(values) != len(goals.objectives):
            raise Invalid(
                f"needs one value per objective ({len(goals.objectives)}), got {len(values)}",
                field="values",
            )
        if value is not None and not _same(value, values[0]):
            raise Invalid("`value` must be the first of `values`", field="value")
        return goals.results(curve, values)
    if not goals.extended and value is not None:
        return value, None
    found: list[float | None] = [
        rules.aggregate_value(curve(o.metric), o.aggregate, o.direction) for o in goals.objectives
    ]
    if value is not None:
        found[0] = value
    if found[0] is None:
        return None, None  # the caller says which value is missing
    missing = [o.metric for o, v in zip(goals.objectives, found, strict=True) if v is None]
    if missing and not strict:  # a scheduler's stop: keep what there is
        return found[0], goals.results(curve)[1]
    if missing:
        raise Invalid(
            f"no points of the objectives {', '.join(map(repr, missing))}: tell `values` "
            "or report them",
            field="values",
        )
    return goals.results(curve, [v for v in found if v is not None])


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def counts_as_best(study: Any, constraint_values: Sequence[Any] | None) -> bool:
    """Whether a trial's `value` may become the study's best value: never with several
    objectives (their best trials are the Pareto set), never when infeasible."""
    goals = Objectives.of(study)
    if goals.multi:
        return False
    return bool(pareto.is_feasible(goals.constraints, decode(constraint_values)))
