"""Population-based training: PBT (Jaderberg et al., 2017) and PB2 (Parker-Holder et al., 2020).

A population of `population_size` trials (members) trains side by side. Each member is
granted one `perturbation_interval` of fidelity at a time and pauses at its end (its
process saves a checkpoint and exits). At that boundary its score is compared with the
scores the other members reached at the same boundary: a member in the bottom
`quantile_fraction` exploits one of the top `quantile_fraction` (chosen by a seeded draw)
and explores from the donor's hyperparameters; any other member goes on as it was. The
next ask resumes it at once: with new hyperparameters and `extra.checkpoint_from` naming
the donor when it exploits (the runner then copies the donor's checkpoint folder into
the member's before the process starts), with the same ones otherwise. Members never wait
for one another (asynchronous, as Ray Tune's default).

Explore:
- `pbt`: each parameter is resampled from the space with `resample_probability`, else a
  number is multiplied by one of `perturbation_factors` (0.8 or 1.2, kept in range) and a
  categorical moves to a neighbouring choice.
- `pb2`: a time-varying Gaussian-process bandit (app/engine/schedulers/pb2.py) chooses the
  numeric parameters that maximise the expected improvement rate over the next interval,
  given the time and the score the copied weights start from.

Everything the strategy must remember is on the trials (`extra.pbt`): the member's
boundary scores, its hyperparameter schedule (the values the weights it holds were
trained with, per fidelity interval, inherited from the donor at an exploit), its
lineage and the plan decided at its last pause. A trial marked `extra.replay` is not a
member: it runs a stored schedule from scratch, pausing where the values change.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import Field, field_validator

from app.engine import options
from app.engine.base import (
    Action,
    Decision,
    History,
    Sampler,
    Scheduler,
    SearchExhausted,
    StudyContext,
    Suggestion,
    TrialRecord,
    TrialState,
    oriented,
    unit_rng_seed,
)
from app.engine.errors import ConfigError
from app.engine.space import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    ParamValue,
    SearchSpace,
)

_EPS = 1e-9
KEY = "pbt"  # extra.pbt: a member's bookkeeping
REPLAY = "replay"  # extra.replay: a replay trial's schedule
COPY = "checkpoint_from"  # extra.checkpoint_from: the folder the runner copies on resume


class PBTOptions(options.Options):
    sampler: str = Field(default="random", description="The sampler of the first configs.")
    population_size: int = Field(default=8, ge=2, le=10_000)
    perturbation_interval: float | None = Field(
        default=None, gt=0, description="Fidelity units between exploits; None: fidelity.min."
    )
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    perturbation_factors: tuple[float, float] = (0.8, 1.2)

    @field_validator("perturbation_factors")
    @classmethod
    def _positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        if any(not math.isfinite(f) or f <= 0 for f in value):
            raise ValueError("factors must be positive finite numbers")
        return value


class PB2Options(options.Options):
    sampler: str = Field(default="random", description="The sampler of the first configs.")
    population_size: int = Field(default=4, ge=2, le=10_000)
    perturbation_interval: float | None = Field(
        default=None, gt=0, description="Fidelity units between exploits; None: fidelity.min."
    )
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _steps_key(step: float) -> str:
    """A boundary as a JSON key: `4`, not `4.0`, so that keys match however they came."""
    return f"{step:g}"


def schedule_at(schedule: Sequence[Mapping[str, Any]], step: float) -> dict[str, Any]:
    """The params a schedule holds at `step` (the last entry starting at or before it)."""
    current: dict[str, Any] = dict(schedule[0]["params"]) if schedule else {}
    for entry in schedule:
        if float(entry["step"]) <= step + _EPS:
            current = dict(entry["params"])
    return current


def schedule_as_of(info: Mapping[str, Any], step: float) -> list[dict[str, Any]]:
    """The schedule of the weights a member held when it paused at `step`: those its
    snapshot there holds. An exploit at that boundary (or later) replaced them after the
    snapshot was taken, so the schedule from before that exploit is the one."""
    schedule = list(info.get("schedule") or [])
    for entry in reversed(info.get("lineage") or []):
        if float(entry["step"]) < step - _EPS:
            break
        schedule = list(entry.get("schedule_before") or schedule)
    return schedule


def member_info(trial: TrialRecord) -> dict[str, Any] | None:
    info = trial.extra.get(KEY)
    return dict(info) if isinstance(info, Mapping) else None


def last_boundary(info: Mapping[str, Any]) -> float | None:
    scores = info.get("scores") or {}
    return max((float(k) for k in scores), default=None)


def replay_start(
    schedule: Sequence[Mapping[str, Any]], fidelity_max: float, of: Mapping[str, Any]
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """A replay trial's first params, budget and extra: it runs `schedule` from scratch and
    pauses at each step where the values change (`of`: which trial it replays)."""
    if not schedule:
        raise ConfigError("trial", "the trial has no schedule to replay")
    entries: list[dict[str, Any]] = [
        {"step": float(e["step"]), "params": dict(e["params"])} for e in schedule
    ]
    changes = sorted({float(e["step"]) for e in entries if 0 < float(e["step"]) < fidelity_max})
    budget = changes[0] if changes else fidelity_max
    extra = {REPLAY: {**dict(of), "schedule": entries}}
    return schedule_at(entries, 0.0), budget, extra


class PopulationBasedTraining(Scheduler):
    """Options: population_size, perturbation_interval, quantile_fraction, and the explore's
    resample_probability and perturbation_factors."""

    name = "pbt"
    needs_intermediate = False

    def __init__(self, context: StudyContext) -> None:
        super().__init__(context)
        if context.fidelity is None:
            raise ConfigError("fidelity", f"the {self.name} strategy needs a fidelity")
        self.fidelity = context.fidelity
        opts = context.options
        # max_trials below the population size makes the population smaller.
        self.population = min(int(opts.get("population_size", 8)), context.max_trials or 10**9)
        interval = opts.get("perturbation_interval")
        self.interval = float(interval) if interval else float(self.fidelity.min)
        self.quantile = float(opts.get("quantile_fraction", 0.25))
        self.resample = float(opts.get("resample_probability", 0.25))
        factors = opts.get("perturbation_factors") or (0.8, 1.2)
        self.factors = tuple(float(f) for f in factors)

    @property
    def max(self) -> float:
        return float(self.fidelity.max)

    def _next_boundary(self, step: float) -> float:
        """The first boundary (a multiple of the interval) after `step`, at most max."""
        k = math.floor(step / self.interval + _EPS) + 1
        return min(k * self.interval, self.max)

    # Asking ---------------------------------------------------------------------------

    def suggest(self, history: History, sampler: Sampler) -> Suggestion:
        resume = self.pending_resume(history)
        if resume is not None:
            return resume
        members = [t for t in history.trials() if KEY in t.extra]
        if len(members) >= self.population:
            raise SearchExhausted(f"the population of {self.population} is complete")
        base = sampler.suggest(history)
        params = dict(base.params)
        info = {
            "member": len(members),
            "schedule": [{"step": 0.0, "params": params}],
            "scores": {},
            "segment": {"start": 0.0, "reward": None},
            "lineage": [],
        }
        return Suggestion(
            params=params,
            budget=self._next_boundary(0.0),
            extra={**base.extra, KEY: info},
        )

    def pending_resume(self, history: History) -> Suggestion | None:
        """The paused member (or replay) that went furthest least, resumed with its plan:
        members stay close in time, so each boundary has peers to compare with.

        A member that reached a boundary before a quorum of the population (half of it,
        at least two) waits there, paused, until the quorum has reached it or no other
        member can: comparing it with fewer would let the first to arrive never exploit
        (with as many workers as members, members keep their order in time)."""
        paused = history.trials([TrialState.PAUSED])
        candidates: list[tuple[tuple[float, int], TrialRecord]] = []
        for trial in paused:
            if KEY not in trial.extra and REPLAY not in trial.extra:
                continue
            budget = trial.budget or 0.0
            if budget >= self.max * (1 - _EPS):
                continue
            candidates.append(((budget, trial.number), trial))
        for _, trial in sorted(candidates, key=lambda c: c[0]):
            if REPLAY in trial.extra:
                return self._resume_replay(trial)
            info = member_info(trial) or {}
            plan = info.get("next")
            if isinstance(plan, Mapping) and plan.get("waiting"):
                at = float(plan["at"])
                if not self._quorum(history, trial, at) and self._coming(history, trial, at):
                    continue
                value = (info.get("scores") or {}).get(_steps_key(at))
                why, decided = self._plan(
                    history, trial, at, math.nan if value is None else float(value)
                )
                info["next"] = decided
                info["decided"] = why
                trial = replace(trial, extra={**trial.extra, KEY: info})
            return self._resume_member(history, trial)
        return None

    @property
    def quorum(self) -> int:
        return max(2, math.ceil(self.population / 2))

    def _quorum(self, history: History, trial: TrialRecord, at: float) -> bool:
        value = ((member_info(trial) or {}).get("scores") or {}).get(_steps_key(at))
        score = math.nan if value is None else float(value)
        return len(self._peers(history, trial, at, score)) >= self.quorum

    def _coming(self, history: History, trial: TrialRecord, at: float) -> bool:
        """Whether another member may still reach the boundary `at` (running or paused
        before it): without one, waiting for a quorum would never end."""
        for other in history.trials([TrialState.RUNNING, TrialState.PAUSED, TrialState.QUEUED]):
            if other.id == trial.id:
                continue
            info = member_info(other)
            if info is None:
                continue
            if (last_boundary(info) or 0.0) < at - _EPS:
                return True
        members = sum(1 for t in history.trials() if KEY in t.extra)
        return members < self.population  # members not started yet will come

    def _resume_replay(self, trial: TrialRecord) -> Suggestion:
        info = dict(trial.extra[REPLAY])
        schedule = info.get("schedule") or []
        start = trial.budget or 0.0
        params = schedule_at(schedule, start)
        changes = sorted(
            float(e["step"]) for e in schedule if start + _EPS < float(e["step"]) < self.max
        )
        budget = changes[0] if changes else self.max
        changed = ", ".join(
            f"{k} {_fmt(trial.params.get(k))} -> {_fmt(v)}"
            for k, v in params.items()
            if trial.params.get(k) != v
        )
        return Suggestion(
            params=params,
            budget=budget,
            resume_trial_id=trial.id,
            reason=f"replaying the schedule from {self.fidelity.param} {start:g}"
            + (f": {changed}" if changed else ""),
        )

    def _resume_member(self, history: History, trial: TrialRecord) -> Suggestion:
        info = member_info(trial) or {}
        plan = info.get("next")
        at = last_boundary(info) or (trial.budget or 0.0)
        events: list[tuple[str, str, dict[str, Any]]] = []
        copy: dict[str, Any] | None = None
        params = dict(trial.params)
        start = at
        reward_before = _reward(info.get("scores", {}).get(_steps_key(at)), self)
        if isinstance(plan, Mapping) and plan.get("donor_id") is not None:
            donor = _record(history, int(plan["donor_id"]))
            donor_info = member_info(donor) if donor is not None else None
            donor_step = last_boundary(donor_info) if donor_info else None
            if donor is not None and donor_info is not None and donor_step is not None:
                donor_step = min(donor_step, self.max)
                if donor_step < self.max * (1 - _EPS):
                    start = donor_step
                    params = dict(plan["params"])
                    donor_score = donor_info["scores"][_steps_key(donor_step)]
                    reward_before = _reward(donor_score, self)
                    copy = {
                        "trial_id": donor.id,
                        "trial_number": donor.number,
                        "step": donor_step,
                    }
                    inherited = [
                        e
                        for e in schedule_as_of(donor_info, donor_step)
                        if float(e["step"]) < start - _EPS
                    ]
                    before = info.get("schedule") or []
                    info["schedule"] = [*inherited, {"step": start, "params": params}]
                    info["lineage"] = [
                        *info.get("lineage", []),
                        {
                            "step": at,
                            "donor_id": donor.id,
                            "donor_number": donor.number,
                            "donor_step": donor_step,
                            "donor_value": donor_score,
                            "value": info["scores"].get(_steps_key(at)),
                            "from_params": dict(trial.params),
                            "to_params": params,
                            # What the member's weights were before: a copy of its snapshot
                            # at `step` (taken before this exploit) is described by it.
                            "schedule_before": before,
                        },
                    ]
                    events.append(
                        (
                            "exploit",
                            f"{plan.get('why', '')}; copied trial {donor.number}'s checkpoint "
                            f"({self.fidelity.param} {donor_step:g}, {self.context.metric} "
                            f"{_fmt(donor_score)})",
                            {
                                "donor_id": donor.id,
                                "donor_number": donor.number,
                                "donor_step": donor_step,
                                "step": at,
                            },
                        )
                    )
                    events.append(
                        (
                            "explore",
                            f"{self.fidelity.param} {start:g}: {plan.get('explore', '')}",
                            {
                                "from_params": dict(donor.params),
                                "to_params": params,
                                "step": start,
                            },
                        )
                    )
        decided = info.get("decided")
        info["next"] = None
        info["decided"] = None
        info["segment"] = {"start": start, "reward": reward_before}
        budget = self._next_boundary(start)
        if copy:
            reason = f"exploited trial {copy['trial_number']} at {self.fidelity.param} {at:g}"
        elif decided:  # decided only now, once enough members reached the boundary
            reason = str(decided).removeprefix("paused at ")
        else:
            reason = f"goes on from {self.fidelity.param} {at:g} with the same hyperparameters"
        return Suggestion(
            params=params,
            budget=budget,
            resume_trial_id=trial.id,
            extra={KEY: info, COPY: copy},
            reason=reason,
            events=tuple(events),
        )

    # Deciding -------------------------------------------------------------------------

    def on_result(self, history: History, trial: TrialRecord) -> Decision:
        if not trial.intermediate:
            return Decision.keep_going()
        budget = trial.budget if trial.budget is not None else self.max
        last = max(trial.intermediate)
        if budget >= self.max * (1 - _EPS) or last < budget * (1 - _EPS):
            return Decision.keep_going()
        if REPLAY in trial.extra:
            return Decision(
                Action.PAUSE,
                f"replay reached {self.fidelity.param} {budget:g}: the schedule changes here",
            )
        info = member_info(trial)
        if info is None:  # a trial the strategy did not start (a user's own): let it run
            return Decision.keep_going()
        value = trial.intermediate[last]
        at = budget
        scores = dict(info.get("scores") or {})
        scores[_steps_key(at)] = value if math.isfinite(value) else None
        info["scores"] = scores
        rows = self._data_row(info, trial, at, value)
        if rows is not None:
            info["data"] = [*info.get("data", []), rows]
        k = round(at / self.interval)
        candidate = replace(trial, extra={**trial.extra, KEY: info})
        if not self._quorum(history, candidate, at) and self._coming(history, candidate, at):
            info["next"] = {"waiting": True, "at": at}
            why = (
                f"paused at {self.fidelity.param} {at:g}: {self.context.metric} {_fmt(value)}; "
                f"waits until {self.quorum} members have reached {self.fidelity.param} "
                f"{at:g} to compare with"
            )
            return Decision(Action.PAUSE, why, rung=k, extra={KEY: info})
        why, plan = self._plan(history, trial, at, value)
        info["next"] = plan
        return Decision(Action.PAUSE, why, rung=k, extra={KEY: info})

    def _data_row(
        self, info: Mapping[str, Any], trial: TrialRecord, at: float, value: float
    ) -> dict[str, Any] | None:
        """PB2's observation of the interval just ended: the reward's change per fidelity
        unit, relative to the reward it started from, with the time, that reward and the
        params that ran. Relative, where Ray Tune's PB2 takes the absolute change: a loss
        falls geometrically, so absolute changes of late intervals vanish beside early ones
        and the model (fitted on one scale across time) could not rank late choices."""
        segment = info.get("segment") or {}
        start = float(segment.get("start", 0.0))
        before = segment.get("reward")
        reward = _reward(value, self)
        if before is None or reward is None or at <= start + _EPS:
            return None
        return {
            "t": at,
            "r_before": float(before),
            "y": (reward - float(before)) / (abs(float(before)) + 1e-12) / (at - start),
            "params": dict(trial.params),
        }

    def _peers(
        self, history: History, trial: TrialRecord, at: float, value: float
    ) -> list[tuple[float, int, TrialRecord, float]]:
        """(oriented score, number, record, score) of every member with a finite score at
        the boundary `at`, this one included, best first.

        Members are compared at the same boundary only: a member that has not reached it
        yet has a score from fewer epochs, and could not be a donor anyway (copying its
        weights would send this member back in time, over steps it has reported)."""
        key = _steps_key(at)
        rows: list[tuple[float, int, TrialRecord, float]] = []
        for other in history.trials():
            if other.id == trial.id:
                continue
            info = member_info(other)
            if info is None:
                continue
            score = (info.get("scores") or {}).get(key)
            if score is None or not math.isfinite(float(score)):
                continue
            rows.append(
                (oriented(float(score), self.context.direction), other.number, other, score)
            )
        if math.isfinite(value):
            rows.append((oriented(value, self.context.direction), trial.number, trial, value))
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def _plan(
        self, history: History, trial: TrialRecord, at: float, value: float
    ) -> tuple[str, dict[str, Any] | None]:
        where = f"{self.fidelity.param} {at:g}"
        metric = self.context.metric
        peers = self._peers(history, trial, at, value)
        n = len(peers)
        share = f"{self.quantile * 100:g} %"
        if n < 2:
            return (
                f"paused at {where}: {metric} {_fmt(value)}; no other member has reached "
                f"{where} yet, so it goes on",
                None,
            )
        size = min(math.ceil(n * self.quantile), n // 2)
        position = next((i for i, r in enumerate(peers) if r[2].id == trial.id), n - 1)
        rank = f"rank {position + 1} of {n}"
        if position < n - size:
            return (
                f"paused at {where}: {metric} {_fmt(value)} ({rank}) is not in the bottom "
                f"{share}; it goes on with the same hyperparameters",
                None,
            )
        # A donor must hold a checkpoint at `at` or later (a member that has not reached
        # `at` would send this one back in time) and one it can still train from.
        donors = [
            r
            for r in peers[:size]
            if at - _EPS <= (last_boundary(member_info(r[2]) or {}) or 0.0) < self.max * (1 - _EPS)
            and r[2].state != TrialState.FAILED
            and r[2].id != trial.id
        ]
        if not donors:
            return (
                f"paused at {where}: {metric} {_fmt(value)} ({rank}) is in the bottom {share}, "
                f"but no top member has a checkpoint from {where} on to copy; it goes on",
                None,
            )
        rng = random.Random(unit_rng_seed(self.context.seed, trial.number, salt=int(at * 1000)))
        _, _, donor, donor_value = donors[rng.randrange(len(donors))]
        new_params, explained = self.explore(history, trial, donor, at, rng)
        why = (
            f"{where}: {metric} {_fmt(value)} in the bottom {share} ({rank}); "
            f"exploits trial {donor.number} ({_fmt(donor_value)})"
        )
        plan = {
            "donor_id": donor.id,
            "donor_number": donor.number,
            "params": new_params,
            "why": why,
            "explore": explained,
        }
        return f"paused at {why}", plan

    # Exploring ------------------------------------------------------------------------

    def explore(
        self,
        history: History,
        trial: TrialRecord,
        donor: TrialRecord,
        at: float,
        rng: random.Random,
    ) -> tuple[dict[str, ParamValue], str]:
        """New params from the donor's: each resampled with `resample_probability`, else
        perturbed. Returns them and a line saying what changed and how."""
        return perturb(self.context.space, donor.params, rng, self.resample, self.factors)


def perturb(
    space: SearchSpace,
    base: Mapping[str, ParamValue],
    rng: random.Random,
    resample_probability: float,
    factors: Sequence[float],
    only: Sequence[str] | None = None,
) -> tuple[dict[str, ParamValue], str]:
    """PBT's explore. Parameters are visited parents first; one that becomes active
    under a changed parent is drawn from the space. `only`: the names to perturb (the
    others keep the base value)."""
    new: dict[str, ParamValue] = {}
    notes: list[str] = []
    for param in space.order:
        if param.condition is not None and not param.condition.holds(new):
            continue
        if isinstance(param, FixedParam):
            new[param.name] = param.value
            continue
        old = base.get(param.name)
        if old is None:
            new[param.name] = param.from_unit(rng.random())
            notes.append(f"{param.name} drawn: {_fmt(new[param.name])}")
            continue
        if only is not None and param.name not in only:
            new[param.name] = old
            continue
        if rng.random() < resample_probability:
            new[param.name] = param.from_unit(rng.random())
            how = "resampled"
        elif isinstance(param, CategoricalParam):
            index = param.index(old)
            step = rng.choice((-1, 1))
            new[param.name] = param.choices[max(0, min(len(param.choices) - 1, index + step))]
            how = "neighbour"
        elif isinstance(param, FloatParam | IntParam):
            factor = factors[rng.randrange(len(factors))]
            moved = min(max(float(old) * factor, param.low), param.high)
            new[param.name] = param.quantize(moved)
            how = f"x{factor:g}"
        else:  # pragma: no cover - every kind is handled above
            new[param.name] = old
            how = "kept"
        if new[param.name] != old:
            notes.append(f"{param.name} {_fmt(old)} -> {_fmt(new[param.name])} ({how})")
        else:
            notes.append(f"{param.name} {_fmt(old)} kept ({how})")
    ordered = {p.name: new[p.name] for p in space.params if p.name in new}
    return ordered, "; ".join(notes)


def _reward(value: Any, scheduler: PopulationBasedTraining) -> float | None:
    """A score as a reward (larger is better), None when there is no finite one."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return -oriented(value, scheduler.context.direction)


def _record(history: History, trial_id: int) -> TrialRecord | None:
    for trial in history.trials():
        if trial.id == trial_id:
            return trial
    return None


class PB2(PopulationBasedTraining):
    """PBT whose explore is a time-varying GP bandit over the numeric parameters."""

    name = "pb2"

    def explore(
        self,
        history: History,
        trial: TrialRecord,
        donor: TrialRecord,
        at: float,
        rng: random.Random,
    ) -> tuple[dict[str, ParamValue], str]:
        from app.engine.schedulers.pb2 import select

        space = self.context.space
        numeric = [p for p in space.searchable if isinstance(p, FloatParam | IntParam)]
        donor_info = member_info(donor) or {}
        rows: list[Mapping[str, Any]] = []
        current: list[Mapping[str, Any]] = []
        for other in history.trials():
            info = member_info(other)
            if info is None:
                continue
            rows.extend(info.get("data") or [])
            if other.id != trial.id and other.state == TrialState.RUNNING:
                # Members already set off on this interval: the bandit spreads away from them.
                current.append(other.params)
        donor_step = last_boundary(donor_info) or at
        donor_score = (donor_info.get("scores") or {}).get(_steps_key(donor_step))
        start_reward = _reward(donor_score, self)
        # As in Ray's PB2, only numbers are modelled: the rest keep the donor's values.
        new, _ = perturb(space, donor.params, rng, 0.0, self.factors, only=())
        if not numeric:
            return new, "no numeric parameter to explore: the donor's values are kept"
        chosen = select(
            numeric,
            rows,
            current,
            time=donor_step,
            reward_before=start_reward if start_reward is not None else 0.0,
            seed=unit_rng_seed(self.context.seed, trial.number, salt=int(at * 1000) + 7),
        )
        if chosen is None:  # too little data for a model yet: PBT's perturbation
            return perturb(space, donor.params, rng, 0.0, self.factors)
        notes: list[str] = []
        for param in numeric:
            old = donor.params.get(param.name)
            new[param.name] = chosen[param.name]
            notes.append(f"{param.name} {_fmt(old)} -> {_fmt(chosen[param.name])} (GP-UCB)")
        ordered = {p.name: new[p.name] for p in space.params if p.name in new}
        return ordered, "; ".join(notes)


def check_options(strategy: Mapping[str, Any], fidelity: Any) -> None:
    """What the options cannot check alone: the interval against the fidelity."""
    interval = strategy.get("perturbation_interval")
    if fidelity is None or interval is None:
        return
    if float(interval) >= float(fidelity.max):
        raise ConfigError(
            "strategy.perturbation_interval",
            f"must be below fidelity.max ({fidelity.max:g}), or no member ever exploits",
        )
