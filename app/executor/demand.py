"""How many more trial starts each running study with an `execution` can take now."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.notify import Change, subscribe
from app.db.session import Database
from app.engine.base import TrialState
from app.studies import service as studies
from app.studies.repository import StudyRepository
from app.studies.settings import study_settings
from app.trials.repository import TrialRepository

log = logging.getLogger("tunelab.executor")


@dataclass(frozen=True)
class Demand:
    study_id: int
    queue: str | None
    open_slots: int  # max_parallel_trials minus running trials, capped by what is left
    max_parallel: int
    left: int  # trials not yet handed out (new, queued or paused)


def demands(session: Session) -> tuple[list[Demand], frozenset[int]]:
    """What each running study with an `execution` can take, and the ids of all of them
    (those with nothing left too: a trial of theirs may yet be queued again)."""
    out: list[Demand] = []
    executed: set[int] = set()
    trials = TrialRepository(session)
    for study in StudyRepository(session).running():
        settings = study_settings(study)
        if settings.execution is None:
            continue
        executed.add(study.id)
        running = trials.count_in_states(study.id, [TrialState.RUNNING])
        waiting = trials.count_in_states(study.id, [TrialState.QUEUED, TrialState.PAUSED])
        left = max(0, studies.trial_cap(study) - study.next_number) + waiting
        max_parallel = settings.limits.max_parallel_trials
        if left > 0:
            open_slots = max(0, min(max_parallel - running, left))
            out.append(Demand(study.id, settings.execution.queue, open_slots, max_parallel, left))
    return out, frozenset(executed)


class DemandLoop(ABC):
    """Runs `fill` on every committed trial or study change and every `sweep_s` seconds."""

    sweep_s = 2.0

    def __init__(self, database: Database) -> None:
        self.database = database
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Running studies with an execution, as of the last pass. Trials of the others are
        # driven over the API by their own clients: their changes need no pass, which
        # would load every running study on every ask and tell.
        self._executed: frozenset[int] = frozenset()

    def _on_change(self, change: Change) -> None:
        if change.kind == "study" or (change.kind == "trial" and change.study_id in self._executed):
            self.wake.set()

    def start(self) -> None:
        self._unsubscribe = subscribe(self._on_change)
        self._thread = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self.sweep_s)
            self.wake.clear()
            if self.stopping.is_set():
                break
            try:
                with self.database.session() as session:
                    wanted, self._executed = demands(session)
                self.fill(wanted)
            except Exception:  # a database or broker hiccup must not end the loop
                log.exception("trial dispatch failed")

    @abstractmethod
    def fill(self, wanted: list[Demand]) -> None:
        """Starts (or queues) up to `open_slots` trial starts per study."""
