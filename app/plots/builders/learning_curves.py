"""Learning curves: a study's (finished trials share one trace per state, running trials
get one each, which the dashboard extends point by point) and one trial's metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.engine.forecast import forecast
from app.plots.builders.common import (
    STATE_COLORS,
    empty,
    finite,
    floats,
    layout,
    rung_levels,
    scatter,
)
from app.plots.repository import Series, TrialRow

# States whose curves end early; a marker shows where.
EARLY_END = ("stopped", "paused", "failed", "cancelled")
# Running trials that get a forecast band (the newest), and its colour.
FORECAST_TRIALS = 20
FORECAST_COLOR = "#2563eb"
# Learning curves of at most this many finished trials (the best half and an even sample
# of the rest; running trials and the best one always): past it, curves only pile up
# into one band, and SVG needs one element per curve.
CURVE_TRIALS = 1500


def _segments(rows: Sequence[tuple[int, Series]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs: list[Any] = []
    ys: list[Any] = []
    ids: list[Any] = []
    for trial_id, series in rows:
        xs.extend(series.steps)
        ys.extend(series.values)
        ids.extend([trial_id] * len(series.steps))
        xs.append(None)
        ys.append(None)
        ids.append(None)
    return floats(xs), floats(ys), floats(ids)


def curve_trials(
    trials: Sequence[TrialRow],
    direction: str,
    best_trial_id: int | None = None,
    limit: int | None = None,
) -> tuple[set[int] | None, str]:
    """Which trials the learning curves draw (None: all) and a note for the title.

    Past `limit` finished trials: every running trial, the best trial, the best half of
    the limit by value and an even sample of the others, so the band and its best edge
    look as they would with every curve."""
    limit = CURVE_TRIALS if limit is None else limit
    candidates = [t for t in trials if t.state not in ("running", "queued")]
    if len(candidates) <= limit:
        return None, ""
    kept = {t.id for t in trials if t.state == "running"}
    if best_trial_id is not None:
        kept.add(best_trial_id)
    scored = [t for t in candidates if finite(t.value)]
    ranked = sorted(scored, key=lambda t: t.value or 0.0, reverse=direction == "maximize")
    best = {t.id for t in ranked[: limit // 2]}
    rest = [t for t in candidates if t.id not in best]
    sample = {t.id for t in rest[:: math.ceil(len(rest) / (limit - len(best)))]}
    kept |= best | sample
    shown = len(best | sample)
    return kept, f" ({shown} of {len(candidates)} finished: the best {len(best)} and a sample)"


def curves(
    trials: Sequence[TrialRow],
    series: Mapping[int, Series],
    metric: str,
    fidelity: Mapping[str, Any] | None = None,
    best_trial_id: int | None = None,
    note: str = "",
    forecast_horizon: float | None = None,
) -> go.Figure:
    """Learning curves. Running trials get one trace each and
    `layout.meta.live` maps trial id -> [trace index, cursor] for incremental appends.
    `note` (from `curve_trials`) tells in the title when only some trials are drawn.
    With `forecast_horizon`, running trials get a dashed forecast band up to it
    (`layout.meta.forecast`: the trials that have one)."""
    if not series:
        return empty("Learning curves", f"No points of {metric} yet")
    by_id = {t.id: t for t in trials}
    fig = go.Figure()
    live: dict[str, list[int]] = {}
    groups: dict[str, list[tuple[int, Series]]] = {}
    running: list[tuple[int, Series]] = []
    for trial_id, s in series.items():
        trial = by_id.get(trial_id)
        state = trial.state if trial else "completed"
        if state == "running":
            running.append((trial_id, s))
        else:
            groups.setdefault(state, []).append((trial_id, s))
    # SVG draws one element per curve and one per end marker.
    ended = sum(len(rows) for state, rows in groups.items() if state in EARLY_END)
    marks = len(series) + ended
    for state, rows in groups.items():
        xs, ys, ids = _segments(rows)
        fig.add_trace(
            scatter(
                marks,
                x=xs,
                y=ys,
                customdata=ids,
                mode="lines",
                name=state,
                line={"color": STATE_COLORS.get(state, "#64748b"), "width": 1},
                opacity=0.55,
                hovertemplate="trial id %{customdata}<br>step %{x}<br>%{y}<extra>"
                + state
                + "</extra>",
            )
        )
        if state in EARLY_END:
            # Mark where each early-ended curve stops.
            ends = [(tid, s.steps[-1], s.values[-1]) for tid, s in rows if s.steps]
            fig.add_trace(
                scatter(
                    marks,
                    x=floats([e[1] for e in ends]),
                    y=floats([e[2] for e in ends]),
                    customdata=floats([e[0] for e in ends]),
                    mode="markers",
                    name=f"{state} here",
                    showlegend=False,
                    marker={"symbol": "x", "size": 7, "color": STATE_COLORS.get(state, "#64748b")},
                    hovertemplate="trial id %{customdata} "
                    + state
                    + " at step %{x}<extra></extra>",
                )
            )
    if best_trial_id is not None and best_trial_id in series and best_trial_id not in dict(running):
        s = series[best_trial_id]
        fig.add_trace(
            scatter(
                marks,
                x=floats(s.steps),
                y=floats(s.values),
                mode="lines",
                name="best trial",
                customdata=floats([best_trial_id] * len(s.steps)),
                line={"color": "#111827", "width": 2.5},
            )
        )
    banded = _forecast_bands(fig, running, by_id, forecast_horizon)
    for trial_id, s in sorted(running, key=lambda r: r[0]):
        trial = by_id.get(trial_id)
        live[str(trial_id)] = [len(fig.data), s.cursor]
        fig.add_trace(
            scatter(
                marks,
                x=floats(s.steps),
                y=floats(s.values),
                customdata=floats([trial_id] * len(s.steps)),
                mode="lines+markers",
                name=f"#{trial.number if trial else trial_id} running",
                line={"color": STATE_COLORS["running"], "width": 2},
                marker={"size": 4},
            )
        )
    for level in rung_levels(fidelity):
        fig.add_vline(x=level, line_dash="dot", line_color="#9ca3af", opacity=0.8)
    return layout(
        fig,
        "Learning curves" + note,
        xaxis_title="step",
        yaxis_title=metric,
        meta={"live": live, "metric": metric, "forecast": banded},
    )


def _forecast_bands(
    fig: go.Figure,
    running: Sequence[tuple[int, Series]],
    by_id: Mapping[int, TrialRow],
    horizon: float | None,
) -> list[int]:
    """A dashed band per running trial (the newest FORECAST_TRIALS): where its curve is
    forecast to go up to `horizon` (app/engine/forecast.py), mean and 90 % interval.
    Computed on request from the points drawn; returns the trials that got one (the
    dashboard redraws the chart when they report, so the band follows the curve)."""
    if horizon is None:
        return []
    banded: list[int] = []
    for trial_id, s in sorted(running, key=lambda r: -r[0])[:FORECAST_TRIALS]:
        curve = [(x, y) for x, y in zip(s.steps, s.values, strict=False) if finite(y)]
        predicted = forecast(curve, horizon)
        if predicted is None:
            continue
        trial = by_id.get(trial_id)
        label = f"#{trial.number if trial else trial_id} forecast"
        # The band starts at the last point so that it continues the curve.
        last = (predicted.last_step, float(curve[-1][1]))
        xs = [last[0], *predicted.steps]
        style = {"color": FORECAST_COLOR, "width": 1, "dash": "dash"}
        common: dict[str, Any] = {
            "mode": "lines",
            "legendgroup": label,
            "customdata": [trial_id] * len(xs),
        }
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[last[1], *predicted.high],
                line=style,
                name=label,
                showlegend=False,
                hoverinfo="skip",
                **common,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[last[1], *predicted.low],
                line=style,
                fill="tonexty",
                fillcolor="rgba(37, 99, 235, 0.10)",
                name=label,
                showlegend=False,
                hoverinfo="skip",
                **common,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[last[1], *predicted.mean],
                line={**style, "width": 1.5},
                name=label,
                hovertemplate=f"{label}<br>step %{{x}}<br>%{{y:.4g}}<extra>90 % interval shaded</extra>",
                **common,
            )
        )
        banded.append(trial_id)
    return banded


def trial_curves(series: Mapping[str, Series], cursor: int) -> go.Figure:
    """Every metric of one trial, one panel each. `layout.meta` holds `traces` (metric ->
    trace index) and `cursor` (the `since=` for points newer than the figure)."""
    if not series:
        return empty("Metrics", "No metric points yet")
    names = sorted(series)
    cols = min(len(names), 2)
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, vertical_spacing=0.5 / rows)
    traces: dict[str, int] = {}
    marks = sum(len(series[name].steps) for name in names)
    single: list[str] = []
    for i, name in enumerate(names):
        s = series[name]
        traces[name] = i
        if len(s.steps) == 1:
            single.append(name)
            _one_point_axes(fig, s, row=i // cols + 1, col=i % cols + 1)
        fig.add_trace(
            scatter(
                marks,
                x=floats(s.steps),
                y=floats(s.values),
                mode="lines+markers",
                name=name,
                showlegend=False,
                marker={"size": 8 if len(s.steps) == 1 else 4},
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    # `single`: panels whose axes were fixed around one point; the page draws the figure
    # anew when they get more points, rather than extending a fixed range.
    return layout(
        fig,
        "Metrics",
        height=max(320, 260 * rows),
        meta={"traces": traces, "cursor": cursor, "single": single},
    )


def _one_point_axes(fig: go.Figure, s: Series, row: int, col: int) -> None:
    """Axes for a curve of one point: steps from 0 (where training starts) to just past
    the point, and values a little either side of it. Plotly's own range
    for one point is the point plus or minus one, whatever its scale."""
    step, value = float(s.steps[0]), s.values[0]
    if math.isfinite(step):
        high = step * 1.1 if step > 0 else step + 1.0
        low = min(0.0, step - 1.0) if step <= 0 else 0.0
        # Ticks at the start and at the point only: automatic ones would label
        # fractions of a step.
        ticks = [0.0, step] if step > 0 else [step]
        fig.update_xaxes(range=[low, high], tickvals=ticks, row=row, col=col)
    if value is not None and math.isfinite(value):
        pad = abs(value) * 0.1 or 1.0
        fig.update_yaxes(range=[value - pad, value + pad], row=row, col=col)
