"""A typed view of a stored study's settings, so that no caller repeats a default.

`study_settings(study).limits.heartbeat_timeout_s` instead of
`study.limits.get("heartbeat_timeout_s", 300)`: each JSON column is parsed by the model
that validated it on input (app/studies/schemas.py, app/engine/options.py), defaults
included. Reads are lenient (`options.load_stored`): a key stored by an older version
that no model knows is dropped, so an old study or an imported export still loads; only
input is refused for unknown keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from app.engine import options, registry
from app.studies.models import Study
from app.studies.schemas import ExecutionSpec, FidelitySpec, Limits, Objective


class StudySettings:
    """Each section is parsed on first use: most callers read one of them."""

    def __init__(
        self,
        *,
        objective: Mapping[str, Any],
        strategy: Mapping[str, Any],
        early_stopping: Mapping[str, Any] | None,
        limits: Mapping[str, Any] | None,
        fidelity: Mapping[str, Any] | None,
        execution: Mapping[str, Any] | None,
    ) -> None:
        self._objective = objective
        self._strategy = strategy
        self._early_stopping = early_stopping
        self._limits = limits
        self._fidelity = fidelity
        self._execution = execution

    @cached_property
    def objective(self) -> Objective:
        return options.load_stored(Objective, self._objective)

    @cached_property
    def strategy(self) -> registry.StrategySettings:
        """Name, seed and every option of the strategy (and of its stopping rule)."""
        return registry.parse_stored(self._strategy, self._early_stopping)

    @cached_property
    def limits(self) -> Limits:
        return stored_limits(self._limits)

    @cached_property
    def fidelity(self) -> FidelitySpec | None:
        return None if not self._fidelity else options.load_stored(FidelitySpec, self._fidelity)

    @cached_property
    def execution(self) -> ExecutionSpec | None:
        if not self._execution:
            return None
        return options.load_stored(ExecutionSpec, self._execution)


def stored_limits(raw: Mapping[str, Any] | None) -> Limits:
    """A study's `limits` column alone (a query that selects only that column)."""
    return options.load_stored(Limits, raw)


def study_settings(study: Study) -> StudySettings:
    """The settings of `study` as they are now (a PATCH of limits is seen by the next call)."""
    return StudySettings(
        objective={
            "metric": study.metric,
            "direction": study.direction,
            "aggregate": study.aggregate,
        },
        strategy=study.strategy or {},
        early_stopping=study.early_stopping,
        limits=study.limits,
        fidelity=study.fidelity,
        execution=study.execution,
    )


def settings_of_body(body: Mapping[str, Any]) -> StudySettings:
    """The settings of a study body as exported or stored by any version (app/transfer)."""
    objective = body.get("objective") or {}
    return StudySettings(
        objective=objective if isinstance(objective, Mapping) else {},
        strategy=body.get("strategy") or {},
        early_stopping=body.get("early_stopping"),
        limits=body.get("limits"),
        fidelity=body.get("fidelity"),
        execution=body.get("execution"),
    )
