"""Loads what a figure needs and calls its builder."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from sqlalchemy.orm import Session

from app.core import notify
from app.core.errors import Invalid
from app.plots import builders
from app.plots.importance import METHOD, importances
from app.plots.repository import PlotRepository, TrialRow
from app.studies.models import Study
from app.trials.models import Trial

# Curves in one figure share this many points; each trial gets its share (decimated in
# SQL), between 4 and 500 points.
CURVE_POINTS = 60_000
TRIAL_POINTS = 2000


def _per_trial(n_trials: int) -> int:
    return max(4, min(500, CURVE_POINTS // max(n_trials, 1)))


def _numeric_params(space: Mapping[str, Any]) -> list[str]:
    return [n for n, s in space.items() if s.get("type") != "fixed"]


def _curves(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    repo = PlotRepository(session)
    metric = opts.get("metric") or study.metric
    shown, note = builders.curve_trials(trials, study.direction, study.best_trial_id)
    per_trial = _per_trial(len(trials) if shown is None else len(shown))
    series = repo.study_curves(study.id, metric, per_trial, shown)
    running = [t.id for t in trials if t.state == "running"]
    for trial_id, cursor in repo.cursors(running).items():
        if trial_id in series:
            series[trial_id].cursor = cursor
    return builders.curves(trials, series, metric, study.fidelity, study.best_trial_id, note)


def _contour(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    names = _numeric_params(study.space)
    x = opts.get("x") or (names[0] if names else "")
    y = opts.get("y") or (names[1] if len(names) > 1 else x)
    return builders.contour(trials, study.space, study.metric, x, y)


# Importance changes only when a trial gets a value: keyed by what it was computed from.
_importance_cache: dict[tuple[Any, ...], dict[str, float]] = {}


def _importance(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    scored = [t.value for t in trials if t.state in builders.SCORED and t.value is not None]
    key = (study.id, len(scored), sum(v for v in scored if math.isfinite(v)))
    scores = _importance_cache.get(key)
    if scores is None:
        scores = importances(trials, study.space, seed=study.seed)
        if len(_importance_cache) > 256:
            _importance_cache.clear()
        _importance_cache[key] = scores
    return builders.importance(scores, METHOD)


Builder = Callable[[Session, Study, list[TrialRow], Mapping[str, str]], go.Figure]

BUILDERS: dict[str, Builder] = {
    "history": lambda s, st, t, o: builders.history(t, st.direction, st.metric),
    "curves": _curves,
    "parallel": lambda s, st, t, o: builders.parallel(
        t, st.space, st.metric, st.direction, brush=o.get("brush") == "true"
    ),
    "slices": lambda s, st, t, o: builders.slices(t, st.space, st.metric, st.direction),
    "contour": _contour,
    "importance": _importance,
    "rungs": lambda s, st, t, o: builders.rungs(t, st.fidelity, st.metric),
    "timeline": lambda s, st, t, o: builders.timeline(t),
}
KINDS = tuple(BUILDERS)


def figure(
    session: Session, study: Study, kind: str, options: Mapping[str, str] | None = None
) -> go.Figure:
    builder = BUILDERS.get(kind)
    if builder is None:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")
    with _importing:
        pass
    return builder(session, study, _trials(session, study.id), options or {})


# A page asks for its figures and its summary at once, and live redraws come in bursts:
# the study's trial rows are loaded once and shared until a trial or the study changes
# (heard from core/notify after this process's commits). Changes committed by another
# API process are not heard here; rows older than this are never reused for that reason.
ROWS_MAX_AGE_S = 1.0
_ROWS_STUDIES = 32  # studies whose rows are kept at once


@dataclass
class _Rows:
    generation: int
    loaded_at: float  # when the load began: the rows are no older than this
    done: threading.Event = field(default_factory=threading.Event)
    rows: list[TrialRow] | None = None


_rows: dict[int, _Rows] = {}
_generations: dict[int, int] = {}
_rows_lock = threading.Lock()


def _on_change(change: notify.Change) -> None:
    if change.kind in ("trial", "study"):
        with _rows_lock:
            _generations[change.study_id] = _generations.get(change.study_id, 0) + 1


notify.subscribe(_on_change)


def _trials(session: Session, study_id: int) -> list[TrialRow]:
    """The study's trials, shared by the requests of one page (see `_Rows`)."""
    now = time.monotonic()
    with _rows_lock:
        generation = _generations.get(study_id, 0)
        entry = _rows.get(study_id)
        reusable = (
            entry is not None
            and entry.generation == generation
            and now - entry.loaded_at < ROWS_MAX_AGE_S
        )
        if entry is None or not reusable:
            entry = _rows[study_id] = _Rows(generation, now)
            owner = True
            while len(_rows) > _ROWS_STUDIES:
                _rows.pop(next(iter(_rows)))
        else:
            owner = False
    if owner:
        try:
            entry.rows = PlotRepository(session).trials(study_id)
        finally:
            entry.done.set()
    else:
        entry.done.wait(60)
    return entry.rows if entry.rows is not None else PlotRepository(session).trials(study_id)


def trial_figure(session: Session, trial: Trial) -> go.Figure:
    with _importing:
        pass
    repo = PlotRepository(session)
    series = repo.trial_curves(trial.id, TRIAL_POINTS)
    cursor = repo.cursors([trial.id]).get(trial.id, 0)
    return builders.trial_curves(series, cursor)


def summary(session: Session, study: Study) -> dict[str, Any]:
    """Key figures: best value, trials by state, compute used and saved by early stopping.

    Saved compute is estimated: a trial stopped at step s of a full length L (the
    fidelity maximum, else the median last step of completed trials) saved (L - s)
    steps and, at its own pace, duration * (L / s - 1) seconds.
    """
    trials = _trials(session, study.id)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    used_s = sum(t_duration(t) for t in trials)
    full: float | None = float(study.fidelity["max"]) if study.fidelity else None
    if full is None:
        ends = sorted(t.last_step for t in trials if t.state == "completed" and t.last_step)
        full = ends[len(ends) // 2] if ends else None
    saved_steps = saved_s = 0.0
    if full:
        for t in trials:
            if t.state == "stopped" and t.last_step is not None and 0 < t.last_step < full:
                saved_steps += full - t.last_step
                saved_s += t_duration(t) * (full / t.last_step - 1)
    best = study.best_value
    return {
        "study_id": study.id,
        "best_value": best if best is None or math.isfinite(best) else None,
        "best_trial_id": study.best_trial_id,
        "n_trials": len(trials),
        "trial_counts": counts,
        "compute_used_s": used_s,
        "budget_used": study.budget_used,
        "compute_saved_s": saved_s,
        "steps_saved": saved_steps,
    }


def t_duration(t: TrialRow) -> float:
    if t.started_at is None:
        return 0.0
    from app.db.types import utcnow

    return max(0.0, ((t.finished_at or utcnow()) - t.started_at).total_seconds())


# Held while warm_up imports. Figures wait for it: plotly looks pandas up in sys.modules
# without importing it, and would see a half-imported module from another thread.
_importing = threading.Lock()


def warm_up() -> None:
    """Imports the numeric libraries the figures need (seconds on a busy machine), so that
    a server's first dashboard visit does not wait for them."""
    with _importing:
        import pandas  # noqa: F401
        import sklearn.ensemble
        import sklearn.inspection  # noqa: F401
