"""The strategy engine's interface: read-only history in, a suggestion or a decision out.

A strategy keeps no memory between calls. Everything it needs (trials, their states,
budgets, rungs, intermediate values) is read from the study's history, which lives in
the database, so any API process can make the next decision and a restart loses nothing.
The engine imports neither the database nor HTTP: the service layer adapts its
repositories to the `History` protocol below.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from app.engine.space import ParamValue, SearchSpace

if TYPE_CHECKING:
    from app.engine.index import HistoryIndex
    from app.engine.pareto import ConstraintSpec, ObjectiveSpec

Direction = Literal["minimize", "maximize"]


class TrialState(enum.StrEnum):
    QUEUED = "queued"  # created, waiting for a worker slot
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a rung, may be resumed with a larger budget
    COMPLETED = "completed"
    STOPPED = "stopped"  # ended early by a scheduler; its last value still counts
    FAILED = "failed"
    CANCELLED = "cancelled"  # ended by a person or because the study stopped

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {TrialState.COMPLETED, TrialState.STOPPED, TrialState.FAILED, TrialState.CANCELLED}
)


class Action(enum.StrEnum):
    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    # Bookkeeping the scheduler keeps on the trial (e.g. the rung reached and its value),
    # stored whatever the action, so that later decisions can read it from the history.
    rung: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def keep_going(cls) -> Decision:
        return cls(Action.CONTINUE, "")


@dataclass(frozen=True)
class Fidelity:
    """The resource a multi-fidelity strategy hands out: epochs, steps or a data fraction."""

    param: str
    min: float
    max: float
    reduction_factor: float = 3.0

    def rungs(self) -> list[float]:
        """Budgets min * eta^k below max, then max itself."""
        levels: list[float] = []
        budget = self.min
        while budget < self.max * (1 - 1e-9):
            levels.append(budget)
            budget *= self.reduction_factor
        levels.append(self.max)
        return levels


@dataclass(frozen=True)
class TrialRecord:
    """One trial as a strategy sees it."""

    id: int
    number: int
    params: Mapping[str, ParamValue]
    state: TrialState
    value: float | None = None  # the objective as reported (see StudyContext.direction)
    budget: float | None = None  # fidelity budget currently granted
    rung: int = -1  # highest rung reached (multi-fidelity), -1 for none
    # Objective metric by step (step = fidelity units for multi-fidelity studies).
    intermediate: Mapping[float, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # strategy-owned data on the trial
    # Several objectives (app/engine/pareto.py): every objective's value as reported, in
    # the study's order (`value` is the first), and each constraint metric's value.
    values: tuple[float, ...] | None = None
    constraint_values: tuple[float | None, ...] | None = None
    # The other objectives' curves by metric, on the trial a scheduler decides on (several
    # objectives: app/engine/pareto_rungs.py); empty elsewhere.
    curves: Mapping[str, Mapping[float, float]] = field(default_factory=dict)


class History(Protocol):
    """Read access to a study's trials. Implemented by the service layer."""

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        """Trials in number order, optionally only those in `states`."""
        ...

    def count(self) -> int:
        """Number of trials created so far (the next trial gets this number)."""
        ...

    def index(self, direction: Direction) -> HistoryIndex:
        """The trials' incremental indexes (app/engine/index.py), kept in step with every
        change: what a strategy asks of many trials, answered without visiting them.
        Outside `trials()`, the only intermediate values it holds are finished trials'
        running averages; the reporting trial's curve is on the record `on_result` gets."""
        ...


@dataclass(frozen=True)
class StudyContext:
    space: SearchSpace
    direction: Direction
    metric: str
    seed: int
    options: Mapping[str, Any]
    fidelity: Fidelity | None = None
    max_trials: int | None = None
    # Every objective (the first is `metric`/`direction`) and the constraints; empty for a
    # study with one objective and none (app/engine/pareto.py).
    objectives: tuple[ObjectiveSpec, ...] = ()
    constraints: tuple[ConstraintSpec, ...] = ()

    @property
    def directions(self) -> tuple[Direction, ...]:
        return tuple(o.direction for o in self.objectives) or (self.direction,)

    @property
    def multi(self) -> bool:
        """Whether samplers must rank by several objectives or by feasibility."""
        return len(self.objectives) > 1 or bool(self.constraints)


@dataclass(frozen=True)
class Suggestion:
    """A new config to run, or a paused trial to resume with a larger budget."""

    params: Mapping[str, ParamValue]
    budget: float | None = None
    resume_trial_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # stored on the trial (e.g. bracket)
    reason: str = ""  # why a paused trial is resumed, recorded on its event
    # Params of a resumed trial may change (population-based training's explore); these
    # events (kind, reason, data) are recorded on the trial before its resume.
    events: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()


class SearchExhausted(Exception):
    """The strategy has no config left to offer (for example every grid point is used)."""


class Sampler(ABC):
    """Chooses configs. Stateless: all it knows comes from the context and history."""

    name: str = ""

    def __init__(self, context: StudyContext) -> None:
        self.context = context

    @abstractmethod
    def suggest(self, history: History) -> Suggestion:
        """The next config; raises SearchExhausted when there is none left."""

    def capacity(self) -> int | None:
        """How many distinct configs this sampler can ever offer, if bounded."""
        return None


class Scheduler(ABC):
    """Decides, from reported intermediate values, whether a trial goes on."""

    name: str = ""
    # Whether the history's index must hold finished trials' curves (their running
    # averages, for the median rule). A scheduler that keeps what it needs in
    # `TrialRecord.extra` (rung results) sets False: cheaper.
    needs_intermediate: ClassVar[bool] = True

    def __init__(self, context: StudyContext) -> None:
        self.context = context

    def suggest(self, history: History, sampler: Sampler) -> Suggestion:
        """A resume of a paused trial, or the sampler's next config with a budget."""
        return sampler.suggest(history)

    def pending_resume(self, history: History) -> Suggestion | None:
        """The resume `suggest` would hand out now, if any, without sampling a new config.

        Asked when no new trial may be created (max_trials reached): a study with paused
        trials ends only once none of them can be promoted."""
        return None

    @abstractmethod
    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        """Called after `trial` reported new values (already in `trial.intermediate`)."""


class NoScheduler(Scheduler):
    name = "none"
    needs_intermediate = False

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        return Decision.keep_going()


def oriented(value: float, direction: Direction) -> float:
    """A value where smaller is better, whatever the direction."""
    return value if direction == "minimize" else -value


def is_better(candidate: float, incumbent: float | None, direction: Direction) -> bool:
    if not math.isfinite(candidate):
        return False
    if incumbent is None or not math.isfinite(incumbent):
        return True
    return candidate < incumbent if direction == "minimize" else candidate > incumbent


def unit_rng_seed(seed: int, number: int, salt: int = 0) -> int:
    """A per-trial seed so that trial k gets the same config under the same study seed."""
    return (seed * 1_000_003 + number * 7919 + salt) & 0xFFFFFFFF
