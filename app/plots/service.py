"""Loads what a figure needs and calls its builder (one module per figure family in
`app/plots/builders/`). Trial rows come from `rows` (kept per process, synced from the
study's `history_version`); figure JSON is kept per study version (`figure_json`)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import plotly.graph_objects as go
from sqlalchemy.orm import Session

from app.core.errors import Invalid
from app.importance import service as importance_service
from app.importance.compute import LABELS
from app.plots import builders, pareto, rows, serialize
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
    return builders.curves(
        trials,
        series,
        metric,
        study.fidelity,
        study.best_trial_id,
        note,
        forecast_horizon=_forecast_horizon(study, trials) if metric == study.metric else None,
    )


def _forecast_horizon(study: Study, trials: list[TrialRow]) -> float | None:
    """Where running curves are forecast to (a dashed band on the learning curves): the
    forecast rule's `horizon`, else the fidelity's max, else the last step completed
    trials reached; None (no band) for a study with neither a fidelity nor the rule."""
    rule = study.early_stopping or {}
    if rule.get("horizon") is not None:
        return float(rule["horizon"])
    if study.fidelity and study.fidelity.get("max") is not None:
        return float(study.fidelity["max"])
    if rule.get("rule") != "forecast":
        return None
    steps = [t.last_step for t in trials if t.state == "completed" and t.last_step is not None]
    return max(steps) if steps else None


def _contour(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    names = _numeric_params(study.space)
    x = opts.get("x") or (names[0] if names else "")
    y = opts.get("y") or (names[1] if len(names) > 1 else x)
    return builders.contour(trials, study.space, study.metric, x, y)


def _importance(
    session: Session, study: Study, trials: list[TrialRow], opts: Mapping[str, str]
) -> go.Figure:
    """The numbers of `GET /studies/{id}/importance` (its default method, its cache)."""
    loaded = importance_service.load(session, study)
    read = loaded if not isinstance(loaded, importance_service.Inputs) else None
    if read is None:
        assert isinstance(loaded, importance_service.Inputs)
        # End the read before fitting: on SQLite every transaction holds the write lock.
        session.rollback()
        read = importance_service.run(loaded)
    scores = {p.param: p.importance for p in read.params}
    return builders.importance(scores, LABELS[read.method], read.note)


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
    # Several objectives: drawn only for such studies by the dashboard.
    "pareto": pareto.pareto_figure,
    "hypervolume": pareto.hypervolume_figure,
}
KINDS = tuple(BUILDERS)
# Figures drawn from the light rows (no parameters, times or worker): the page's first
# chart among them, so that it does not wait for the full rows of a large study.
LIGHT = ("history", "curves", "rungs", "pareto", "hypervolume")
# Figure JSON is kept per study version: for good where the figure depends on nothing
# else, seconds for the curves (metric points come without a new version; the page
# extends running trials from the cursors the figure carries, so an older figure is
# caught up, not wrong) and the timeline (running bars end at "now").
MAX_AGE_S: dict[str, float] = {"curves": 10.0, "timeline": 5.0}
_FIGURES_KEPT = 64


def figure(
    session: Session, study: Study, kind: str, options: Mapping[str, str] | None = None
) -> go.Figure:
    builder = BUILDERS.get(kind)
    if builder is None:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")
    with _importing:
        pass
    trials = rows.trials(session, study, full=kind not in LIGHT)
    return builder(session, study, trials, options or {})


_figures: OrderedDict[tuple[Any, ...], tuple[float, str]] = OrderedDict()
_figures_lock = threading.Lock()


def figure_json(
    session: Session, study: Study, kind: str, options: Mapping[str, str] | None = None
) -> str:
    """`figure` as JSON, built once per study version (see `MAX_AGE_S`)."""
    version = study.history_version or 0
    key: tuple[Any, ...] | None = None
    now = time.monotonic()
    if version > 0:
        options_key = tuple(sorted((options or {}).items()))
        key = (rows.study_key(session, study), version, kind, options_key)
        with _figures_lock:
            cached = _figures.get(key)
        if cached is not None and now - cached[0] < MAX_AGE_S.get(kind, math.inf):
            return cached[1]
    text = serialize.figure_json(figure(session, study, kind, options))
    if key is not None:
        with _figures_lock:
            _figures[key] = (now, text)
            while len(_figures) > _FIGURES_KEPT:
                _figures.popitem(last=False)
    return text


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
    trials = rows.trials(session, study)
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
