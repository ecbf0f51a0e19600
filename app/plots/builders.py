"""Pure figure builders: plain rows in, `plotly.graph_objects.Figure` out.

They know nothing about the database, so a notebook can feed them its own data.
Large studies stay fast in the browser: point clouds and curves use WebGL traces,
finished curves share one trace per state (segments separated by gaps), and only
running trials get a trace of their own, which the dashboard extends point by point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.plots.repository import Series, TrialRow

STATE_COLORS = {
    "completed": "#2563eb",
    "stopped": "#ea580c",
    "paused": "#a855f7",
    "running": "#16a34a",
    "queued": "#94a3b8",
    "failed": "#dc2626",
    "cancelled": "#64748b",
}
SCORED = ("completed", "stopped")
# Contours mark at most this many trials (an even sample; the surface uses them all).
CONTOUR_POINTS = 1500


def _f(values: Sequence[Any]) -> np.ndarray:
    """A float column (None becomes NaN, a gap): numpy arrays skip plotly's per-element
    validation, which dominates at 10,000 trials, and travel as base64 typed arrays.
    Single precision halves the bytes and is finer than any screen."""
    return np.asarray(values, dtype=np.float32)


def _o(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        template="plotly_white",
        margin={"l": 55, "r": 20, "t": 45, "b": 45},
        legend={"orientation": "h", "y": -0.18},
        uirevision="keep",  # live updates keep the user's zoom
        **extra,
    )
    return fig


def empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _scored(trials: Sequence[TrialRow]) -> list[TrialRow]:
    return [t for t in trials if t.state in SCORED and _finite(t.value)]


def _is_log(spec: Mapping[str, Any]) -> bool:
    return spec.get("scale") in ("log", "reverse_log")


def _numeric_axis(spec: Mapping[str, Any], values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Values to plot and axis settings: categories become their index."""
    if spec.get("type") == "categorical" or any(isinstance(v, str | bool) for v in values):
        choices = list(spec.get("choices") or [])
        for v in values:
            if v not in choices:
                choices.append(v)
        index = {repr(c): i for i, c in enumerate(choices)}
        return [index.get(repr(v)) for v in values], {
            "tickvals": list(range(len(choices))),
            "ticktext": [str(c) for c in choices],
        }
    return values, {}


def history(trials: Sequence[TrialRow], direction: str, metric: str) -> go.Figure:
    scored = _scored(trials)
    if not scored:
        return empty("Optimization history", "No finished trials yet")
    fig = go.Figure()
    for state in SCORED:
        rows = [t for t in scored if t.state == state]
        if rows:
            fig.add_trace(
                go.Scattergl(
                    x=_f([t.number for t in rows]),
                    y=_f([t.value for t in rows]),
                    mode="markers",
                    name=state,
                    marker={"color": STATE_COLORS[state], "size": 6, "opacity": 0.75},
                    customdata=_f([t.id for t in rows]),
                    hovertemplate="trial #%{x}<br>" + metric + " %{y}<extra></extra>",
                )
            )
    best: float | None = None
    xs, ys = [], []
    for t in scored:
        assert t.value is not None
        if best is None or (t.value < best if direction == "minimize" else t.value > best):
            best = t.value
        xs.append(t.number)
        ys.append(best)
    fig.add_trace(
        go.Scattergl(
            x=_f(xs),
            y=_f(ys),
            mode="lines",
            name="best so far",
            line={"color": "#111827", "shape": "hv", "width": 2},
        )
    )
    return _layout(fig, "Optimization history", xaxis_title="trial", yaxis_title=metric)


def rung_levels(fidelity: Mapping[str, Any] | None) -> list[float]:
    """Budgets at which successive-halving rungs cut: min * eta^k up to max."""
    if not fidelity:
        return []
    low, high = float(fidelity["min"]), float(fidelity["max"])
    eta = float(fidelity.get("reduction_factor") or 3.0)
    levels: list[float] = []
    level = low
    while level <= high * (1 + 1e-9) and len(levels) < 50:
        levels.append(level)
        level *= eta
    return levels


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
    return _f(xs), _f(ys), _f(ids)


def curves(
    trials: Sequence[TrialRow],
    series: Mapping[int, Series],
    metric: str,
    fidelity: Mapping[str, Any] | None = None,
    best_trial_id: int | None = None,
) -> go.Figure:
    """Learning curves. Running trials get one trace each and
    `layout.meta.live` maps trial id -> [trace index, cursor] for incremental appends."""
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
    for state, rows in groups.items():
        xs, ys, ids = _segments(rows)
        fig.add_trace(
            go.Scattergl(
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
        if state in ("stopped", "paused", "failed", "cancelled"):
            # Mark where each early-ended curve stops.
            ends = [(tid, s.steps[-1], s.values[-1]) for tid, s in rows if s.steps]
            fig.add_trace(
                go.Scattergl(
                    x=_f([e[1] for e in ends]),
                    y=_f([e[2] for e in ends]),
                    customdata=_f([e[0] for e in ends]),
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
            go.Scattergl(
                x=_f(s.steps),
                y=_f(s.values),
                mode="lines",
                name="best trial",
                customdata=_f([best_trial_id] * len(s.steps)),
                line={"color": "#111827", "width": 2.5},
            )
        )
    for trial_id, s in sorted(running, key=lambda r: r[0]):
        trial = by_id.get(trial_id)
        live[str(trial_id)] = [len(fig.data), s.cursor]
        fig.add_trace(
            go.Scattergl(
                x=_f(s.steps),
                y=_f(s.values),
                customdata=_f([trial_id] * len(s.steps)),
                mode="lines+markers",
                name=f"#{trial.number if trial else trial_id} running",
                line={"color": STATE_COLORS["running"], "width": 2},
                marker={"size": 4},
            )
        )
    for level in rung_levels(fidelity):
        fig.add_vline(x=level, line_dash="dot", line_color="#9ca3af", opacity=0.8)
    return _layout(
        fig,
        "Learning curves",
        xaxis_title="step",
        yaxis_title=metric,
        meta={"live": live, "metric": metric},
    )


def _thin(scored: list[TrialRow], limit: int, direction: str) -> tuple[list[TrialRow], str]:
    """At most `limit` trials: the best half of the limit and an even sample of the rest,
    in trial order; and a note for the title when some were left out."""
    if len(scored) <= limit:
        return scored, ""
    ranked = sorted(scored, key=lambda t: t.value or 0.0, reverse=direction == "maximize")
    best = {t.id for t in ranked[: limit // 2]}
    rest = [t for t in scored if t.id not in best]
    sample = {t.id for t in rest[:: math.ceil(len(rest) / (limit - len(best)))]}
    kept = [t for t in scored if t.id in best or t.id in sample]
    return kept, f" ({len(kept)} of {len(scored)}: the best {len(best)} and a sample)"


# Parallel coordinates and slices draw one line or marker per trial; past these counts
# they only get slower to draw, not more readable.
PARALLEL_TRIALS = 2000
SLICE_TRIALS = 4000


def parallel(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, direction: str = "minimize"
) -> go.Figure:
    scored, note = _thin(_scored(trials), PARALLEL_TRIALS, direction)
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    if not scored or not names:
        return empty("Parallel coordinates", "No finished trials yet")
    dims = []
    for name in names:
        spec = space[name]
        raw = [t.params.get(name) for t in scored]
        values, axis = _numeric_axis(spec, raw)
        label = name
        if not axis and _is_log(spec):
            values = [
                math.log10(v) if isinstance(v, int | float) and v > 0 else None for v in values
            ]
            label = f"log10({name})"
        dims.append({"label": label, "values": _f(values), **axis})
    objective = _f([t.value for t in scored])
    dims.append({"label": metric, "values": objective})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={"color": objective, "colorscale": "Viridis", "showscale": True},
        )
    )
    fig = _layout(fig, "Parallel coordinates" + note)
    return fig.update_layout(margin={"t": 100, "l": 60, "r": 60})  # room for axis labels


def slices(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, direction: str = "minimize"
) -> go.Figure:
    scored, note = _thin(_scored(trials), SLICE_TRIALS, direction)
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    if not scored or not names:
        return empty("Slices", "No finished trials yet")
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=names,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=0.18,
    )
    numbers = _f([t.number for t in scored])
    ys = _f([t.value for t in scored])
    ids = _f([t.id for t in scored])
    for i, name in enumerate(names):
        spec = space[name]
        values, axis = _numeric_axis(spec, [t.params.get(name) for t in scored])
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Scattergl(
                x=_f(values),
                y=ys,
                mode="markers",
                showlegend=False,
                customdata=ids,
                marker={
                    "color": numbers,
                    "colorscale": "Blues",
                    "size": 5,
                    "showscale": i == 0,
                    "colorbar": {"title": {"text": "trial"}},
                },
            ),
            row=r,
            col=c,
        )
        if axis:
            fig.update_xaxes(row=r, col=c, **axis)
        elif _is_log(spec):
            fig.update_xaxes(row=r, col=c, type="log")
    fig.update_yaxes(title_text=metric, row=1, col=1)
    return _layout(fig, "Parameter slices" + note, height=max(320, 280 * rows))


def contour(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, x: str, y: str
) -> go.Figure:
    title = f"Contour: {x} vs {y}"
    scored = [
        t for t in _scored(trials) if t.params.get(x) is not None and t.params.get(y) is not None
    ]
    if x == y or x not in space or y not in space:
        return empty(title, "Choose two different parameters")
    if len(scored) < 3:
        return empty(title, "Needs at least three finished trials")
    xs, x_axis = _numeric_axis(space[x], [t.params[x] for t in scored])
    ys, y_axis = _numeric_axis(space[y], [t.params[y] for t in scored])
    zs = [t.value for t in scored]
    fig = go.Figure()
    grid = _grid(xs, ys, zs, _is_log(space[x]) and not x_axis, _is_log(space[y]) and not y_axis)
    every = math.ceil(len(scored) / CONTOUR_POINTS)  # the markers: an even sample
    scored, xs, ys, zs = scored[::every], xs[::every], ys[::every], zs[::every]
    if grid is not None:
        gx, gy, gz = grid
        fig.add_trace(
            go.Contour(
                x=gx,
                y=gy,
                z=gz,
                colorscale="Viridis",
                connectgaps=True,
                colorbar={"title": {"text": metric}},
                contours={"coloring": "heatmap"},
            )
        )
    fig.add_trace(
        go.Scattergl(
            x=_f(xs),
            y=_f(ys),
            mode="markers",
            showlegend=False,
            customdata=_f([t.id for t in scored]),
            text=_f(zs),
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{metric} %{{text:.4g}}<extra></extra>",
            marker={"color": "#111827", "size": 5, "line": {"color": "white", "width": 1}},
        )
    )
    fig.update_xaxes(title_text=x, **(x_axis or ({"type": "log"} if _is_log(space[x]) else {})))
    fig.update_yaxes(title_text=y, **(y_axis or ({"type": "log"} if _is_log(space[y]) else {})))
    return _layout(fig, title)


def _grid(
    xs: list[Any], ys: list[Any], zs: list[Any], log_x: bool, log_y: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The mean objective per cell of a square grid (log axes binned in log space); empty
    cells are NaN, which the contour bridges. Linear in the number of trials."""
    px, py, pz = _f(xs), _f(ys), _f(zs)
    keep = np.isfinite(px) & np.isfinite(py) & np.isfinite(pz)
    if log_x:
        keep &= px > 0
    if log_y:
        keep &= py > 0
    px, py, pz = px[keep], py[keep], pz[keep]
    if log_x:
        px = np.log10(px)
    if log_y:
        py = np.log10(py)
    if len(px) < 3 or np.ptp(px) == 0 or np.ptp(py) == 0:
        return None
    size = int(min(30, max(5, math.sqrt(len(px)) / 1.5)))
    sums, ex, ey = np.histogram2d(px, py, bins=size, weights=pz)
    counts, _, _ = np.histogram2d(px, py, bins=[ex, ey])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan).T  # rows follow y
    cx, cy = (ex[:-1] + ex[1:]) / 2, (ey[:-1] + ey[1:]) / 2
    return (10**cx if log_x else cx), (10**cy if log_y else cy), mean


def importance(scores: Mapping[str, float], method: str) -> go.Figure:
    if not scores:
        return empty(
            "Parameter importance", "Needs at least 8 finished trials and a varying parameter"
        )
    items = sorted(scores.items(), key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[k for k, _ in items],
            orientation="h",
            marker_color="#2563eb",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    return _layout(
        fig, "Parameter importance", xaxis_title=method, height=max(260, 40 * len(items) + 100)
    )


def rungs(trials: Sequence[TrialRow], fidelity: Mapping[str, Any] | None, metric: str) -> go.Figure:
    reached = [t for t in trials if t.rung >= 0]
    if not reached:
        return empty("Rungs", "No trial has reached a rung (ASHA and Hyperband fill this in)")
    levels = rung_levels(fidelity)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.35, 0.65],
        subplot_titles=("trials per highest rung", f"{metric} by highest rung"),
    )
    top = max(t.rung for t in reached)

    def label(r: int) -> str:
        return f"rung {r}" + (f" ({levels[r]:g})" if r < len(levels) else "")

    for state in ("running", "paused", "stopped", "completed", "failed", "cancelled"):
        counts = [
            sum(1 for t in reached if t.rung == r and t.state == state) for r in range(top + 1)
        ]
        if any(counts):
            fig.add_trace(
                go.Bar(
                    x=[label(r) for r in range(top + 1)],
                    y=counts,
                    name=state,
                    marker_color=STATE_COLORS[state],
                ),
                row=1,
                col=1,
            )
    scored = [t for t in reached if _finite(t.value)]
    fig.add_trace(
        go.Box(
            x=_o([label(t.rung) for t in scored]),
            y=_f([t.value for t in scored]),
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            name=metric,
            showlegend=False,
            customdata=_f([t.id for t in scored]),
            marker={"size": 4, "color": "#2563eb"},
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="stack")
    return _layout(fig, "Rungs")


def timeline(trials: Sequence[TrialRow]) -> go.Figure:
    started = [t for t in trials if t.started_at is not None]
    if not started:
        return empty("Worker timeline", "No trial has started yet")
    from app.db.types import utcnow

    now = utcnow()
    fig = go.Figure()
    workers = sorted({t.worker or "unassigned" for t in started})
    for state in STATE_COLORS:
        rows = [t for t in started if t.state == state]
        if not rows:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        ids: list[Any] = []
        for t in rows:
            assert t.started_at is not None
            worker = t.worker or "unassigned"
            xs += [t.started_at.timestamp() * 1000, (t.finished_at or now).timestamp() * 1000, None]
            ys += [worker, worker, None]
            ids += [t.id, t.id, None]
        fig.add_trace(
            go.Scattergl(
                x=np.asarray(xs, dtype=float),
                y=_o(ys),
                customdata=_f(ids),
                mode="lines",
                name=state,
                line={"color": STATE_COLORS[state], "width": 10},
                hovertemplate="trial id %{customdata}<extra>" + state + "</extra>",
            )
        )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=workers)
    fig.update_xaxes(type="date")  # x holds epoch milliseconds (UTC)
    return _layout(
        fig, "Worker timeline", height=max(260, 28 * len(workers) + 140), xaxis_title="time"
    )


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
    for i, name in enumerate(names):
        s = series[name]
        traces[name] = i
        fig.add_trace(
            go.Scattergl(
                x=_f(s.steps),
                y=_f(s.values),
                mode="lines+markers",
                name=name,
                showlegend=False,
                marker={"size": 4},
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    return _layout(
        fig, "Metrics", height=max(320, 260 * rows), meta={"traces": traces, "cursor": cursor}
    )
