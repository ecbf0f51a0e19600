"""An in-memory study: the engine's `History` over plain records, with the same ask /
report / tell steps as the service. Used by simulations (bench/strategies) and tests,
so that they drive the strategies exactly as the API does, without a database."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from app.engine.base import (
    Action,
    Decision,
    StudyContext,
    Suggestion,
    TrialRecord,
    TrialState,
)
from app.engine.registry import Strategy


class MemoryHistory:
    def __init__(self) -> None:
        self.records: list[TrialRecord] = []

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        if states is None:
            return list(self.records)
        wanted = set(states)
        return [r for r in self.records if r.state in wanted]

    def count(self) -> int:
        return len(self.records)

    def get(self, trial_id: int) -> TrialRecord:
        return self.records[trial_id]

    def update(self, trial_id: int, **changes: Any) -> TrialRecord:
        record = dataclasses.replace(self.records[trial_id], **changes)
        self.records[trial_id] = record
        return record


class MemoryStudy:
    """Asks, reports and tells like app/trials/service.py, minus the database."""

    def __init__(self, strategy: Strategy, context: StudyContext) -> None:
        self.strategy = strategy
        self.context = context
        self.history = MemoryHistory()
        self.budget_used = 0.0

    def ask(self, can_create: bool = True) -> tuple[TrialRecord, bool] | None:
        """The next trial and whether it is a resume; None when there is nothing to hand out."""
        suggestion: Suggestion | None
        suggestion = (
            self.strategy.suggest(self.history)
            if can_create
            else self.strategy.pending_resume(self.history)
        )
        if suggestion is None:
            return None
        if suggestion.resume_trial_id is not None:
            old = self.history.get(suggestion.resume_trial_id)
            budget = suggestion.budget if suggestion.budget is not None else old.budget
            self.budget_used += (budget or 0.0) - (old.budget or 0.0)
            extra = {**old.extra, **suggestion.extra}
            record = self.history.update(
                old.id, state=TrialState.RUNNING, budget=budget, extra=extra
            )
            return record, True
        fidelity = self.context.fidelity
        budget = suggestion.budget
        if budget is None and fidelity is not None:
            budget = fidelity.max
        number = self.history.count()
        record = TrialRecord(
            id=number,
            number=number,
            params=dict(suggestion.params),
            state=TrialState.RUNNING,
            budget=budget,
            extra=dict(suggestion.extra),
        )
        self.budget_used += budget or 0.0
        self.history.records.append(record)
        return record, False

    def report(self, trial_id: int, points: Mapping[float, float]) -> Decision:
        record = self.history.get(trial_id)
        curve = {**record.intermediate, **points}
        record = self.history.update(trial_id, intermediate=curve)
        decision = self.strategy.on_result(self.history, record)
        changes: dict[str, Any] = {}
        if decision.rung is not None:
            changes["rung"] = max(record.rung, decision.rung)
        if decision.extra:
            changes["extra"] = {**record.extra, **decision.extra}
        if decision.action != Action.CONTINUE:
            changes["value"] = curve[max(curve)]
            changes["state"] = (
                TrialState.STOPPED if decision.action == Action.STOP else TrialState.PAUSED
            )
        if changes:
            self.history.update(trial_id, **changes)
        return decision

    def tell(self, trial_id: int, value: float, state: TrialState = TrialState.COMPLETED) -> None:
        self.history.update(trial_id, value=value, state=state)
