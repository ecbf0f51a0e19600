"""Adapts the database to the engine's read-only `History`, and builds a study's strategy.

Each API process keeps, per study, the trials as the strategies see them and their
indexes (app/engine/index.py), with the study's `history_version` they reflect. Every
strategy-visible change of a trial raises that version under the study's row lock and
stamps the trial with it (app/trials/lifecycle.py), so bringing the cache up to date is
one indexed query for the trials stamped after the cached version, and none at all when
the study's version is the cached one. The database stays the one source of truth: any
number of `tunelab serve --workers N` processes, and a restarted one, catch up the same way.

What a transaction read into the cache may include its own uncommitted changes: the entry
stays locked to that transaction until it ends, and is dropped if the transaction wrote
and did not commit.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.engine import registry
from app.engine.base import Direction, Fidelity, StudyContext, TrialRecord, TrialState
from app.engine.index import CURVE_STATES, HistoryIndex
from app.engine.space import SearchSpace
from app.metrics.repository import MetricRepository
from app.studies.models import Study
from app.studies.settings import study_settings
from app.trials import results
from app.trials.models import Trial
from app.trials.repository import TrialRepository

# Studies kept in memory per process, least recently used dropped first, and the trials
# kept over all of them (a study bigger than that alone is still kept while it is used).
MAX_STUDIES = 32
MAX_TRIALS = 1_000_000
# How long a request waits for another one using the same study's cache before it
# builds a private history instead (the study's row lock normally serializes them).
LOCK_TIMEOUT_S = 5.0


def study_context(study: Study) -> StudyContext:
    settings = study_settings(study)
    fidelity = settings.fidelity
    goals = results.Objectives.of(study)
    return StudyContext(
        space=SearchSpace.from_dict(study.space),
        direction=study.direction,  # type: ignore[arg-type]
        metric=study.metric,
        seed=study.seed,
        options=settings.strategy.options,
        fidelity=Fidelity(**fidelity.model_dump()) if fidelity else None,
        max_trials=settings.limits.max_trials,
        objectives=goals.objectives if goals.multi else (),
        constraints=goals.constraints,
    )


def strategy_for(study: Study) -> registry.Strategy:
    return registry.build(study.strategy, study.early_stopping, study_context(study))


def to_record(trial: Trial | Any, intermediate: dict[float, float] | None = None) -> TrialRecord:
    """A trial (an ORM object or a row of `TrialRepository.changed_since`) as a record."""
    return TrialRecord(
        id=trial.id,
        number=trial.number,
        params=trial.params,
        state=TrialState(trial.state),
        value=trial.value,
        budget=trial.budget,
        rung=trial.rung,
        intermediate=intermediate or {},
        extra=trial.extra or {},
        values=results.decode(trial.values),  # type: ignore[arg-type]
        constraint_values=results.decode(trial.constraint_values),
    )


class _Entry:
    """One study's cached history. `lock` is held by one transaction at a time."""

    def __init__(self, cache: HistoryCache, study: Study, with_curves: bool) -> None:
        self.cache = cache
        self.study_id = study.id
        self.created_at: datetime = study.created_at
        self.metric = study.metric
        self.with_curves = with_curves
        self.version = -1  # nothing loaded: the first sync reads every trial
        self.index = HistoryIndex(study.direction)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.valid = True
        self._ordered: list[TrialRecord] | None = None

    def fits(self, study: Study, with_curves: bool) -> bool:
        return (
            self.valid
            and self.created_at == study.created_at
            and self.metric == study.metric
            and self.index.direction == study.direction
            and (self.with_curves or not with_curves)
            and self.version <= study.history_version
        )

    def sync(self, session: Session, study: Study) -> None:
        """Reads the trials changed since the cached version: one indexed query, none
        when the study's version is the cached one."""
        if study.history_version == self.version:
            return
        # The transaction's own changes (a decision stored just before) must be in what
        # the query reads, or the version below would claim them without their rows.
        session.flush()
        rows = TrialRepository(session).changed_since(study.id, self.version)
        curves: Mapping[int, dict[float, float]] = {}
        if self.with_curves:
            # The median rule compares with finished trials' curves: read each once, when
            # its trial finishes (or when the cache is built).
            finished = [row.id for row in rows if row.state in CURVE_STATES]
            curves = MetricRepository(session).series_for_trials(finished, self.metric)
        for row in rows:
            curve = curves.get(row.id, {}) if self.with_curves else None
            self.index.put(to_record(row), curve)
        self.version = max([study.history_version, *(row.history_version for row in rows)])
        if rows:
            self._ordered = None

    def trials(self) -> list[TrialRecord]:
        if self._ordered is None:
            self._ordered = sorted(self.index.records.values(), key=lambda r: r.number)
        return self._ordered


class HistoryCache:
    """The process's cached histories, least recently used first."""

    def __init__(self, max_studies: int = MAX_STUDIES, max_trials: int = MAX_TRIALS) -> None:
        self.max_studies = max_studies
        self.max_trials = max_trials
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def checkout(self, session: Session, study: Study, with_curves: bool) -> _Entry:
        """The study's entry, locked to the session's transaction and brought up to date.
        A private, uncached one when another transaction keeps the shared one too long."""
        held: dict[tuple[int, int], _Entry] = session.info.setdefault(_HELD, {})
        key = (id(self), study.id)
        entry = held.get(key)
        if entry is None:
            entry = self._lock_entry(study, with_curves)
            if entry is None:
                entry = _Entry(self, study, with_curves)
                entry.valid = False  # never shared
            else:
                held[key] = entry
        elif not entry.fits(study, with_curves):
            del held[key]
            self._release(entry, keep=False)
            return self.checkout(session, study, with_curves)
        entry.sync(session, study)
        if entry.valid:
            self._trim()
        return entry

    def _lock_entry(self, study: Study, with_curves: bool) -> _Entry | None:
        for _ in range(3):
            with self._lock:
                entry = self._entries.get(study.id)
                if entry is None or not entry.valid:
                    entry = _Entry(self, study, with_curves or bool(entry and entry.with_curves))
                    self._entries[study.id] = entry
                self._entries.move_to_end(study.id)
            if not entry.lock.acquire(timeout=LOCK_TIMEOUT_S):
                return None
            if entry.fits(study, with_curves):
                return entry
            # Dropped, or built for another study that had this id, or without curves.
            entry.valid = False
            entry.lock.release()
            with self._lock:
                if self._entries.get(study.id) is entry:
                    del self._entries[study.id]
        return None

    def _trim(self) -> None:
        with self._lock:
            total = sum(len(e.index.records) for e in self._entries.values())
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_studies or total > self.max_trials
            ):
                _, dropped = self._entries.popitem(last=False)
                total -= len(dropped.index.records)

    def _release(self, entry: _Entry, keep: bool) -> None:
        if not keep:
            # It may hold changes of this transaction that never happened.
            entry.valid = False
            with self._lock:
                if self._entries.get(entry.study_id) is entry:
                    del self._entries[entry.study_id]
        entry.lock.release()

    def clear(self) -> None:
        with self._lock:
            for entry in self._entries.values():
                entry.valid = False
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_HELD = "tunelab.history_entries"
_WROTE = "tunelab.history_wrote"
CACHE = HistoryCache()


def _release_held(session: Session, keep: bool) -> None:
    held: dict[tuple[int, int], _Entry] = session.info.pop(_HELD, {})
    for entry in held.values():
        entry.cache._release(entry, keep)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if _HELD in session.info:
        _release_held(session, keep=True)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    # Reached on rollback and on close without commit (after a commit nothing is held).
    # A transaction that wrote nothing read only committed rows: its entries stay.
    wrote = session.info.pop(_WROTE, False)
    if _HELD in session.info:
        _release_held(session, keep=not wrote)


class DbHistory:
    """The study's history from the process's cache, brought up to date on first use.
    The reporting trial (`intermediate_for`) carries its curve, read fresh."""

    def __init__(
        self,
        session: Session,
        study: Study,
        with_intermediate: bool,
        intermediate_for: int | None = None,
    ) -> None:
        self.session = session
        self.study = study
        # The scheduler compares with finished trials' curves (the median rule).
        self.with_intermediate = with_intermediate
        self.intermediate_for = intermediate_for
        self._entry: _Entry | None = None
        self._reporting: TrialRecord | None = None

    def _synced(self) -> _Entry:
        if self._entry is None:
            self._entry = CACHE.checkout(self.session, self.study, self.with_intermediate)
        return self._entry

    def count(self) -> int:
        return self.study.next_number

    def index(self, direction: Direction) -> HistoryIndex:
        entry = self._synced()
        if entry.index.direction != direction:  # pragma: no cover - one direction per study
            raise ValueError(f"the study's history is indexed for {entry.index.direction}")
        return entry.index

    def get(self, trial_id: int) -> TrialRecord | None:
        """The trial's record; the reporting trial's with its curve."""
        record = self._synced().index.records.get(trial_id)
        if record is None or trial_id != self.intermediate_for:
            return record
        if self._reporting is None or self._reporting.id != trial_id:
            metrics = MetricRepository(self.session)
            curve = metrics.series_for_trials([trial_id], self.study.metric)
            # Several objectives: the others' curves too (app/engine/pareto_rungs.py).
            others = {
                o.metric: metrics.series_for_trials([trial_id], o.metric).get(trial_id, {})
                for o in results.Objectives.of(self.study).objectives[1:]
            }
            self._reporting = dataclasses.replace(
                record, intermediate=curve.get(trial_id, {}), curves=others
            )
        return self._reporting

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        """Every trial (a pass over all of them: strategies ask the index instead)."""
        records = self._synced().trials()
        if self.intermediate_for is not None:
            reporting = self.get(self.intermediate_for)
            records = [reporting if r.id == self.intermediate_for else r for r in records]  # type: ignore[misc]
        if states is None:
            return records
        wanted = set(states)
        return [r for r in records if r.state in wanted]
