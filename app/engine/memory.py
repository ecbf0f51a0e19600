"""An in-memory study: the engine's `History` over plain records, with the same ask /
report / tell steps as the service. Used by simulations (bench/strategies) and tests,
so that they drive the strategies exactly as the API does, without a database."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from app.engine import lifecycle
from app.engine.base import (
    Decision,
    Direction,
    StudyContext,
    Suggestion,
    TrialRecord,
    TrialState,
)
from app.engine.index import HistoryIndex
from app.engine.registry import Strategy


class MemoryHistory:
    """Records in a list (position = trial id), with the index kept in step: `update`
    and `add` feed it, and records appended to `records` directly join it when it is
    next asked for."""

    def __init__(self) -> None:
        self.records: list[TrialRecord] = []
        self._index: HistoryIndex | None = None
        self._indexed = 0  # records[:_indexed] are in the index

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        if states is None:
            return list(self.records)
        wanted = set(states)
        return [r for r in self.records if r.state in wanted]

    def count(self) -> int:
        return len(self.records)

    def index(self, direction: Direction) -> HistoryIndex:
        if self._index is None or self._index.direction != direction:
            self._index, self._indexed = HistoryIndex(direction), 0
        for record in self.records[self._indexed :]:
            self._index.put(record)
        self._indexed = len(self.records)
        return self._index

    def get(self, trial_id: int) -> TrialRecord:
        return self.records[trial_id]

    def add(self, record: TrialRecord) -> TrialRecord:
        self.records.append(record)
        return record

    def update(self, trial_id: int, **changes: Any) -> TrialRecord:
        record = dataclasses.replace(self.records[trial_id], **changes)
        self.records[trial_id] = record
        if self._index is not None and trial_id < self._indexed:
            self._index.put(record)
        return record


class MemoryStudy:
    """Asks, reports and tells like app/trials/service.py, minus the database: each change
    is worked out by the same lifecycle functions (app/engine/lifecycle.py) and written to
    the in-memory records."""

    def __init__(
        self,
        strategy: Strategy,
        context: StudyContext,
        aggregate: str = "last",
        max_retries: int = 0,
    ) -> None:
        self.strategy = strategy
        self.context = context
        self.aggregate = aggregate  # the objective's `aggregate`: last | best
        self.max_retries = max_retries
        self.history = MemoryHistory()
        self.budget_used = 0.0
        self.retries: dict[int, int] = {}
        self.queued: list[int] = []  # trials waiting to be started (retries), oldest first

    def ask(self, can_create: bool = True) -> tuple[TrialRecord, bool] | None:
        """The next trial and whether it is a resume; None when there is nothing to hand out."""
        if self.queued:  # as the service does, a waiting trial goes first
            trial_id = self.queued.pop(0)
            return self._apply(
                trial_id, lifecycle.start(self.history.get(trial_id), "memory")
            ), False
        suggestion: Suggestion | None
        suggestion = (
            self.strategy.suggest(self.history)
            if can_create
            else self.strategy.pending_resume(self.history)
        )
        if suggestion is None:
            return None
        max_budget = self.context.fidelity.max if self.context.fidelity is not None else None
        if suggestion.resume_trial_id is not None:
            paused = self.history.get(suggestion.resume_trial_id)
            change = lifecycle.resume(
                paused,
                budget=suggestion.budget,
                max_budget=max_budget,
                worker=None,
                extra=suggestion.extra,
                reason=suggestion.reason,
                params=suggestion.params,
                events=suggestion.events,
            )
            return self._apply(paused.id, change), True
        budget = suggestion.budget if suggestion.budget is not None else max_budget
        change = lifecycle.create(
            suggestion.params, source="suggested", budget=budget, extra=suggestion.extra
        )
        number = self.history.count()
        blank = TrialRecord(number, number, dict(suggestion.params), TrialState.QUEUED)
        record = self.history.add(dataclasses.replace(blank, **_fields(change)))
        self.budget_used += change.budget_delta
        return record, False

    def report(
        self,
        trial_id: int,
        points: Mapping[float, float],
        others: Mapping[str, Mapping[float, float]] | None = None,
    ) -> Decision:
        """`points`: the first objective's; `others`: other objectives' points by metric."""
        record = self.history.get(trial_id)
        curve = {**record.intermediate, **points}
        curves = {
            name: {**record.curves.get(name, {}), **more} for name, more in (others or {}).items()
        }
        record = self.history.update(
            trial_id, intermediate=curve, curves={**record.curves, **curves}
        )
        decision = self.strategy.on_result(self.history, record)
        change = lifecycle.decide(
            record,
            decision,
            curve=curve,
            aggregate=self.aggregate,
            direction=self.context.direction,
        )
        self._apply(trial_id, change)
        return decision

    def tell(
        self,
        trial_id: int,
        value: float | Sequence[float],
        state: TrialState = TrialState.COMPLETED,
        constraints: Sequence[float | None] | None = None,
    ) -> None:
        """Completes the trial with `value` (a list with several objectives; `constraints`:
        the constraint metrics' values), or fails it (`state` failed; retried while
        `max_retries` allows)."""
        record = self.history.get(trial_id)
        if state == TrialState.FAILED:
            self.fail(trial_id, "reported as failed")
        elif state == TrialState.COMPLETED:
            if isinstance(value, int | float):
                results = (
                    None if constraints is None else lifecycle.Results(None, tuple(constraints))
                )
                self._apply(trial_id, lifecycle.finish(record, value, results=results))
            else:
                values = tuple(float(v) for v in value)
                results = lifecycle.Results(
                    values, None if constraints is None else tuple(constraints)
                )
                self._apply(trial_id, lifecycle.finish(record, values[0], results=results))
        else:
            raise ValueError(f"a trial is told completed or failed, not {state}")

    def fail(self, trial_id: int, reason: str) -> TrialRecord:
        change = lifecycle.fail_or_retry(
            self.history.get(trial_id),
            retries=self.retries.get(trial_id, 0),
            max_retries=self.max_retries,
            may_retry=True,
            reason=reason,
        )
        self.retries[trial_id] = self.retries.get(trial_id, 0) + change.retries_delta
        return self._apply(trial_id, change)

    def _apply(self, trial_id: int, change: lifecycle.Change) -> TrialRecord:
        self.budget_used += change.budget_delta
        if change.state == TrialState.QUEUED and change.from_state != TrialState.QUEUED:
            self.queued.append(trial_id)
        if not change.visible:
            return self.history.get(trial_id)
        return self.history.update(trial_id, **_fields(change))


def _fields(change: lifecycle.Change) -> dict[str, Any]:
    """The record fields `change` sets."""
    fields: dict[str, Any] = {"state": change.state}
    if change.value is not lifecycle.UNCHANGED:
        fields["value"] = change.value
    if change.values is not lifecycle.UNCHANGED:
        fields["values"] = change.values
    if change.constraint_values is not lifecycle.UNCHANGED:
        fields["constraint_values"] = change.constraint_values
    if change.budget is not lifecycle.UNCHANGED:
        fields["budget"] = change.budget
    if change.rung is not lifecycle.UNCHANGED:
        fields["rung"] = change.rung
    if change.extra is not lifecycle.UNCHANGED:
        fields["extra"] = dict(change.extra)
    if change.params is not lifecycle.UNCHANGED:
        fields["params"] = dict(change.params)
    return fields
