"""Incremental indexes over a study's trials, kept in step as records change.

A History feeds every record change to `HistoryIndex.put` (a new record for a trial
replaces its old one); strategies then answer their questions with a dictionary lookup
and a bisection instead of a pass over every trial:

- the results at each (bracket, rung), sorted (successive halving's cutoffs and ranks);
- the paused trials at each (bracket, rung), best first (pause-mode promotion);
- finished results ranked best first, with the configs still pending (model samplers);
- the running averages of finished trials' curves at each step (the median rule);
- the configs already run, and the newest trial carrying a given `extra` key.

Values are kept oriented (smaller is better); NaN, infinite and missing results are +inf,
the worst, as the schedulers rank them.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from app.engine.base import Direction, TrialRecord, TrialState, oriented
from app.engine.space import ParamValue

PENDING_STATES = frozenset({TrialState.RUNNING, TrialState.QUEUED})
# Trials whose curves the median rule compares with: they will not report again.
CURVE_STATES = frozenset({TrialState.COMPLETED, TrialState.STOPPED})

RungKey = tuple[int, int]  # (bracket, rung)
RankKey = tuple[float, float, float]  # (tier, -rung, oriented value)
Ranked = tuple[RankKey, int, int]  # (key, trial number, trial id)
Placed = tuple[float, int, int]  # (oriented value, trial number, trial id)
ConfigKey = tuple[tuple[str, ParamValue], ...]


def config_key(params: Mapping[str, ParamValue]) -> ConfigKey:
    return tuple(sorted(params.items()))


def rung_results(trial: TrialRecord) -> dict[int, float | None]:
    """The trial's results at its rungs, as the successive-halving schedulers record them."""
    raw = trial.extra.get("rungs") or {}
    return {int(k): (None if v is None else float(v)) for k, v in raw.items()}


def bracket_of(trial: TrialRecord) -> int:
    bracket = trial.extra.get("bracket", 0)
    return int(bracket) if isinstance(bracket, int | float) else 0


def rank_key(trial: TrialRecord, direction: Direction) -> RankKey | None:
    """Full-budget results outrank those a scheduler ended early; among those ended early
    a higher rung outranks a lower one (a value after 3 epochs is not comparable with one
    after 27). None for trials without a finite result."""
    if trial.value is None or not math.isfinite(trial.value):
        return None
    if trial.state == TrialState.COMPLETED:
        tier = 0.0
    elif trial.state in (TrialState.STOPPED, TrialState.PAUSED):
        tier = 1.0
    else:
        return None
    return (tier, -float(trial.rung), oriented(trial.value, direction))


def running_averages(
    curve: Mapping[float, float], direction: Direction
) -> list[tuple[float, float]]:
    """(step, mean of the finite oriented values up to and including it), in step order;
    steps before the first finite value have no average."""
    total, count = 0.0, 0
    out: list[tuple[float, float]] = []
    for step in sorted(curve):
        value = curve[step]
        if math.isfinite(value):
            total += oriented(value, direction)
            count += 1
        if count:
            out.append((step, total / count))
    return out


def _remove(values: list[Any] | array, item: Any) -> None:
    position = bisect_left(values, item)
    if position < len(values) and values[position] == item:
        del values[position]


class HistoryIndex:
    """Everything a strategy asks of many trials, answered without visiting them."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.records: dict[int, TrialRecord] = {}
        self._rungs: defaultdict[RungKey, array] = defaultdict(lambda: array("d"))
        self._rungs_any_bracket: defaultdict[int, list[Placed]] = defaultdict(list)
        self._paused: defaultdict[RungKey, list[Placed]] = defaultdict(list)
        self._ranked: list[Ranked] = []
        self._tier_numbers: defaultdict[tuple[float, float], list[tuple[int, int]]] = defaultdict(
            list
        )
        self._completed: list[Placed] = []  # every completed trial with a value, any value
        self._pending: dict[int, TrialRecord] = {}
        self._configs: Counter[ConfigKey] = Counter()
        self._step_averages: defaultdict[float, array] = defaultdict(lambda: array("d"))
        self._last_step: float | None = None  # the largest step a finished curve reached
        self._latest: dict[str, tuple[int, int]] = {}  # extra key -> (number, id)
        self._stale_latest: set[str] = set()
        # What each trial contributed, so that a new record can take it back out.
        self._placed: dict[int, _Contribution] = {}

    # Maintenance ----------------------------------------------------------------------

    def put(self, record: TrialRecord, curve: Mapping[float, float] | None = None) -> None:
        """Adds the trial, or replaces its previous record. A finished trial's curve is
        `curve` when given, else `record.intermediate`: a history that keeps records
        without curves passes it, read once when the trial finishes."""
        old = self._placed.pop(record.id, None)
        if old is not None:
            self._take_out(old)
        averages = None
        if curve is None:
            curve = record.intermediate
        if curve and record.state in CURVE_STATES:
            averages = array("d")
            for step, average in running_averages(curve, self.direction):
                averages.extend((step, average))
        self.records[record.id] = record
        self._placed[record.id] = self._put_in(record, averages)

    def _put_in(self, record: TrialRecord, averages: array | None) -> _Contribution:
        done = _Contribution(record)
        results = rung_results(record)
        bracket = bracket_of(record)
        for rung, value in results.items():
            placed = self._oriented(value)
            insort(self._rungs[(bracket, rung)], placed)
            insort(self._rungs_any_bracket[rung], (placed, record.number, record.id))
            done.rungs.append((bracket, rung, placed))
        if record.state == TrialState.PAUSED and results:
            top = max(results)
            done.paused = ((bracket, top), (self._oriented(results[top]), record.number, record.id))
            insort(self._paused[done.paused[0]], done.paused[1])
        key = rank_key(record, self.direction)
        if key is not None:
            done.ranked = (key, record.number, record.id)
            insort(self._ranked, done.ranked)
            insort(self._tier_numbers[key[:2]], (record.number, record.id))
        if record.state == TrialState.COMPLETED and record.value is not None:
            done.completed = (self._oriented(record.value), record.number, record.id)
            insort(self._completed, done.completed)
        if record.state in PENDING_STATES:
            self._pending[record.id] = record
        self._configs[config_key(record.params)] += 1
        if averages is not None:
            for i in range(0, len(averages), 2):
                insort(self._step_averages[averages[i]], averages[i + 1])
            done.averages = averages
            if len(averages) and (self._last_step is None or averages[-2] > self._last_step):
                self._last_step = averages[-2]
        for name in record.extra:
            latest = self._latest.get(name)
            if latest is None or latest[0] < record.number:
                self._latest[name] = (record.number, record.id)
        return done

    def _take_out(self, done: _Contribution) -> None:
        record = done.record
        for bracket, rung, placed in done.rungs:
            _remove(self._rungs[(bracket, rung)], placed)
            _remove(self._rungs_any_bracket[rung], (placed, record.number, record.id))
        if done.paused is not None:
            _remove(self._paused[done.paused[0]], done.paused[1])
        if done.ranked is not None:
            _remove(self._ranked, done.ranked)
            _remove(self._tier_numbers[done.ranked[0][:2]], (record.number, record.id))
        if done.completed is not None:
            _remove(self._completed, done.completed)
        self._pending.pop(record.id, None)
        self._configs[config_key(record.params)] -= 1
        if done.averages is not None:
            for i in range(0, len(done.averages), 2):
                _remove(self._step_averages[done.averages[i]], done.averages[i + 1])
        for name in record.extra:
            if self._latest.get(name, (None, None))[1] == record.id:
                self._stale_latest.add(name)  # found again on the next question

    def _oriented(self, value: float | None) -> float:
        if value is None or not math.isfinite(value):
            return math.inf
        return oriented(value, self.direction)

    # Successive halving ---------------------------------------------------------------

    def rung_values(self, bracket: int, rung: int) -> Sequence[float]:
        """Every trial's oriented result at the rung of the bracket, sorted (+inf last)."""
        return self._rungs.get((bracket, rung), ())

    def rung_value_of(self, trial_id: int, bracket: int, rung: int) -> float | None:
        """The oriented result the trial contributed at (bracket, rung), if any."""
        done = self._placed.get(trial_id)
        if done is None:
            return None
        for b, r, placed in done.rungs:
            if (b, r) == (bracket, rung):
                return placed
        return None

    def paused_leaders(self) -> list[tuple[RungKey, Placed]]:
        """The best paused trial at each (bracket, rung) of the highest rung it reached."""
        return [(key, placed[0]) for key, placed in self._paused.items() if placed]

    def rungs_with_results(self) -> list[int]:
        return [rung for rung, rows in self._rungs_any_bracket.items() if rows]

    def rung_rows(self, rung: int) -> Sequence[Placed]:
        """Results at the rung over every bracket, best first: (oriented, number, id)."""
        return self._rungs_any_bracket.get(rung, ())

    def completed_rows(self) -> Sequence[Placed]:
        """Completed trials with a value (+inf for a non-finite one), best first."""
        return self._completed

    # Model samplers -------------------------------------------------------------------

    def ranked(self) -> Sequence[Ranked]:
        """Trials with a finite result, best first by (tier, -rung, value), then number."""
        return self._ranked

    def tier_numbers(self, tier: tuple[float, float]) -> Sequence[tuple[int, int]]:
        """(number, id) of the ranked trials of a (tier, -rung) group, oldest first."""
        return self._tier_numbers.get(tier, ())

    def pending(self) -> list[TrialRecord]:
        """Queued and running trials, in number order."""
        return sorted(self._pending.values(), key=lambda r: r.number)

    def has_config(self, params: Mapping[str, ParamValue]) -> bool:
        return self._configs.get(config_key(params), 0) > 0

    def latest_with(self, name: str) -> TrialRecord | None:
        """The highest-numbered trial whose `extra` holds `name`."""
        if name in self._stale_latest:
            self._stale_latest.discard(name)
            found = [(r.number, r.id) for r in self.records.values() if name in r.extra]
            if found:
                self._latest[name] = max(found)
            else:
                self._latest.pop(name, None)
        latest = self._latest.get(name)
        return None if latest is None else self.records[latest[1]]

    # Median rule ----------------------------------------------------------------------

    def step_averages(self, step: float) -> Sequence[float]:
        """Running averages at `step` of the finished (completed or stopped) trials that
        reported that step, oriented and sorted."""
        return self._step_averages.get(step, ())

    def last_step(self) -> float | None:
        """The largest step a finished curve reached (the forecast rule's horizon when
        the study has no fidelity). It never goes down: a replaced record's steps stay
        counted, which is harmless for a horizon."""
        return self._last_step


class _Contribution:
    __slots__ = ("averages", "completed", "paused", "ranked", "record", "rungs")

    def __init__(self, record: TrialRecord) -> None:
        self.record = record
        self.rungs: list[tuple[int, int, float]] = []
        self.paused: tuple[RungKey, Placed] | None = None
        self.ranked: Ranked | None = None
        self.completed: Placed | None = None
        self.averages: array | None = None  # step, average, step, average, ...


def kth_smallest(values: Sequence[float], k: int, add: float | None = None) -> float:
    """The k-th smallest (1-based) of `values` (sorted) with `add` inserted."""
    if add is None:
        return values[k - 1]
    position = bisect_left(values, add)
    if k - 1 < position:
        return values[k - 1]
    if k - 1 == position:
        return add
    return values[k - 2]


class Without(Sequence[float]):
    """A sorted sequence less one occurrence of an item, without copying it."""

    def __init__(self, values: Sequence[float], item: float | None) -> None:
        self.values = values
        self.gap = len(values)
        if item is not None:
            position = bisect_left(values, item)
            if position < len(values) and values[position] == item:
                self.gap = position

    def __len__(self) -> int:
        return len(self.values) - (self.gap < len(self.values))

    def __getitem__(self, i: int) -> float:  # type: ignore[override]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.values[i if i < self.gap else i + 1]


def median_of_sorted(values: Sequence[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2
