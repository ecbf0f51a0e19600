"""Pure figure builders: plain rows in, `plotly.graph_objects.Figure` out.

They know nothing about the database, so a notebook can feed them its own data.
Large studies stay fast in the browser: finished curves share one trace per state
(segments separated by gaps), only running trials get a trace of their own, which the
dashboard extends point by point, and figures hold no more marks than a chart can show.
Lines are SVG (a trace's segments cost little however many there are); markers are SVG
up to `SVG_POINTS` per figure and WebGL beyond, where each SVG marker, an element of its
own, costs more than WebGL's drawing in software (a browser without a GPU). Parallel
coordinates are SVG lines too, as Plotly's parcoords is WebGL only and takes seconds to
draw without a GPU; it stays available on request for its brushing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
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
# States whose curves end early; a marker shows where.
EARLY_END = ("stopped", "paused", "failed", "cancelled")
# Contours mark at most this many trials (an even sample; the surface uses them all).
CONTOUR_POINTS = 800
# Marks (markers, or separate line pieces) per figure up to which SVG is drawn; past it,
# WebGL: in a browser without a GPU, ten thousand SVG markers take about twice as long
# as the same markers in WebGL, a few thousand about as long.
SVG_POINTS = 4_000
# Learning curves of at most this many finished trials (the best half and an even sample
# of the rest; running trials and the best one always): past it, curves only pile up
# into one band, and SVG needs one element per curve.
CURVE_TRIALS = 1500


def _scatter(n_marks: int, **trace: Any) -> go.Scatter | go.Scattergl:
    """A scatter trace, SVG or WebGL by the number of marks of its figure (see the
    module docstring)."""
    return go.Scatter(**trace) if n_marks <= SVG_POINTS else go.Scattergl(**trace)


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
                _scatter(
                    len(scored),
                    x=_f([t.number for t in rows]),
                    y=_f([t.value for t in rows]),
                    mode="markers",
                    name=state,
                    marker={"color": STATE_COLORS[state], "size": 6, "opacity": 0.75},
                    customdata=_f([t.id for t in rows]),
                    hovertemplate="trial #%{x}<br>" + metric + " %{y}<extra></extra>",
                )
            )
    # The steps of best-so-far (drawn as a staircase): where it improves, and the last trial.
    best: float | None = None
    xs, ys = [], []
    for t in scored:
        assert t.value is not None
        if best is None or (t.value < best if direction == "minimize" else t.value > best):
            best = t.value
            xs.append(t.number)
            ys.append(best)
    if xs[-1] != scored[-1].number:
        xs.append(scored[-1].number)
        ys.append(ys[-1])
    fig.add_trace(
        go.Scatter(
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
    scored = [t for t in candidates if _finite(t.value)]
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
) -> go.Figure:
    """Learning curves. Running trials get one trace each and
    `layout.meta.live` maps trial id -> [trace index, cursor] for incremental appends.
    `note` (from `curve_trials`) tells in the title when only some trials are drawn."""
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
            _scatter(
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
                _scatter(
                    marks,
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
            _scatter(
                marks,
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
            _scatter(
                marks,
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
        "Learning curves" + note,
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


# Parallel coordinates draw one line per trial; past this count they only get slower
# to draw, not more readable.
PARALLEL_TRIALS = 2000
# Slices draw one marker per trial and parameter: as many trials as keep the figure in
# SVG (at 5 parameters, 800 trials in SVG draw in half the time of 2,000 in WebGL),
# and never fewer than this.
SLICE_MIN_TRIALS = 400


def parallel(
    trials: Sequence[TrialRow],
    space: Mapping[str, Any],
    metric: str,
    direction: str = "minimize",
    brush: bool = False,
) -> go.Figure:
    """Parallel coordinates: one line per finished trial across every parameter and the
    objective, coloured by the objective.

    By default the lines are SVG paths (one per colour band), which any browser draws in
    a fraction of a second. `brush=True` gives Plotly's parcoords instead, whose axes can
    be dragged to filter lines; it is always WebGL and takes seconds to draw without a GPU.
    """
    scored, note = _thin(_scored(trials), PARALLEL_TRIALS, direction)
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    if not scored or not names:
        return empty("Parallel coordinates", "No finished trials yet")
    axes = [
        _parallel_axis(name, space[name], [t.params.get(name) for t in scored]) for name in names
    ]
    objective = _f([t.value for t in scored])
    axes.append(_parallel_axis(metric, {}, objective.tolist()))
    if brush:
        fig = go.Figure(
            go.Parcoords(
                dimensions=[
                    {"label": axis.label, "values": axis.values, **axis.plotly_ticks}
                    for axis in axes
                ],
                line={"color": objective, "colorscale": "Viridis", "showscale": True},
            )
        )
        fig = _layout(fig, "Parallel coordinates" + note)
        return fig.update_layout(margin={"t": 100, "l": 60, "r": 60})  # room for axis labels
    return _parallel_lines(scored, axes, objective, metric, direction, note)


@dataclass
class _ParallelAxis:
    label: str
    values: np.ndarray  # the plotted value of each trial (log10 on log axes)
    low: float
    high: float
    ticks: list[tuple[float, str]]  # plotted value, label
    plotly_ticks: dict[str, Any]  # tickvals/ticktext for parcoords (categories)

    def scaled(self) -> np.ndarray:
        """Values on 0..1 (0.5 when the axis has a single value)."""
        if self.high <= self.low:
            return np.where(np.isnan(self.values), np.nan, 0.5)
        return (self.values - self.low) / (self.high - self.low)


def _parallel_axis(name: str, spec: Mapping[str, Any], raw: list[Any]) -> _ParallelAxis:
    values, categories = _numeric_axis(spec, raw)
    if categories:
        column = _f(values)
        ticks = list(zip(categories["tickvals"], categories["ticktext"], strict=True))
        return _ParallelAxis(name, column, 0.0, float(len(ticks) - 1), ticks, categories)
    log = _is_log(spec)
    column = _f([v if isinstance(v, int | float) else None for v in values])
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            column = np.where(column > 0, np.log10(column), np.nan).astype(np.float32)
    finite = column[np.isfinite(column)]
    if not finite.size:
        return _ParallelAxis(name, column, 0.0, 1.0, [], {})
    low, high = float(finite.min()), float(finite.max())
    if log:
        label = f"log10({name})"
        first, last = math.ceil(low), math.floor(high)
        step = max(1, math.ceil((last - first + 1) / 6))
        ticks = [(float(e), f"1e{e}") for e in range(first, last + 1, step)]
        ticks = ticks or [(low, f"{10**low:.3g}"), (high, f"{10**high:.3g}")]
        return _ParallelAxis(label, column, low, high, ticks, {})
    stops = np.linspace(low, high, 5 if high > low else 1)
    if spec.get("type") == "int":
        stops = np.unique(np.round(stops))
    ticks = [(float(v), f"{v:.4g}") for v in stops]
    return _ParallelAxis(name, column, low, high, ticks, {})


# Colour bands of the SVG parallel coordinates: one path each, so the browser draws a
# dozen elements however many trials there are.
PARALLEL_BANDS = 12


def _parallel_lines(
    scored: list[TrialRow],
    axes: list[_ParallelAxis],
    objective: np.ndarray,
    metric: str,
    direction: str,
    note: str,
) -> go.Figure:
    n_axes = len(axes)
    ys = np.column_stack([axis.scaled() for axis in axes])  # trials x axes
    ids = _f([t.id for t in scored])
    low, high = float(np.nanmin(objective)), float(np.nanmax(objective))
    span = high - low or 1.0
    band = np.minimum(((objective - low) / span * PARALLEL_BANDS).astype(int), PARALLEL_BANDS - 1)
    colors = sample_colorscale(
        "Viridis", [(b + 0.5) / PARALLEL_BANDS for b in range(PARALLEL_BANDS)]
    )
    fig = go.Figure()
    # The best band is drawn last, on top of the rest.
    order = range(PARALLEL_BANDS - 1, -1, -1) if direction == "minimize" else range(PARALLEL_BANDS)
    # Each trial is a polyline over the axes and a gap (NaN) before the next one.
    xs_line = np.append(np.arange(n_axes, dtype=np.float32), np.nan)
    labels = np.array([f"#{t.number}" for t in scored])
    for b in order:
        rows = np.flatnonzero(band == b)
        if not rows.size:
            continue
        ys_band = np.full((rows.size, n_axes + 1), np.nan, dtype=np.float32)
        ys_band[:, :n_axes] = ys[rows]
        fig.add_trace(
            go.Scatter(
                x=np.tile(xs_line, rows.size),
                y=ys_band.ravel(),
                mode="lines",
                line={"color": colors[b], "width": 1},
                opacity=0.55,
                customdata=np.repeat(ids[rows], n_axes + 1),
                text=np.repeat(labels[rows], n_axes + 1),
                hovertemplate="trial %{text}<extra></extra>",
                showlegend=False,
                connectgaps=False,
            )
        )
    best = int(np.nanargmin(objective) if direction == "minimize" else np.nanargmax(objective))
    fig.add_trace(
        go.Scatter(
            x=list(range(n_axes)),
            y=ys[best],
            mode="lines+markers",
            line={"color": "#dc2626", "width": 3},
            customdata=[float(ids[best])] * n_axes,
            hovertemplate=f"best: trial #{scored[best].number}<extra></extra>",
            name=f"best (#{scored[best].number})",
        )
    )
    # The colour scale, on a trace with no visible marks.
    fig.add_trace(
        go.Scatter(
            x=[0, 0],
            y=[None, None],
            mode="markers",
            marker={
                "color": [low, high],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": metric}},
            },
            hoverinfo="skip",
            showlegend=False,
        )
    )
    # Axes and their ticks are drawn as shapes and annotations: one y axis serves all.
    shapes, annotations = [], []
    for i, axis in enumerate(axes):
        shapes.append(
            {
                "type": "line",
                "x0": i,
                "x1": i,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#334155", "width": 1},
            }
        )
        annotations.append(
            {"x": i, "y": 1.02, "text": axis.label, "showarrow": False, "yanchor": "bottom"}
        )
        scale = axis.high - axis.low
        annotations += [
            {
                "x": i,
                "y": (value - axis.low) / scale if scale > 0 else 0.5,
                "text": label,
                "showarrow": False,
                "xanchor": "right",
                "xshift": -3,
                "font": {"size": 10, "color": "#334155"},
                "bgcolor": "rgba(255,255,255,0.75)",
            }
            for value, label in axis.ticks
        ]
    fig = _layout(fig, "Parallel coordinates" + note, hovermode="closest")
    return fig.update_layout(
        shapes=shapes,
        annotations=annotations,
        xaxis={"visible": False, "range": [-0.45, n_axes - 0.8]},
        yaxis={"visible": False, "range": [-0.04, 1.1]},
        margin={"l": 70, "r": 20, "t": 70, "b": 20},
    )


def slices(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, direction: str = "minimize"
) -> go.Figure:
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    limit = max(SLICE_MIN_TRIALS, SVG_POINTS // max(1, len(names)))
    scored, note = _thin(_scored(trials), limit, direction)
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
            _scatter(
                len(scored) * len(names),
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
        _scatter(
            len(xs),
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


def _merge_spans(
    spans: list[tuple[str, float, float, int]],
) -> list[tuple[str, float, float, int, int]]:
    """(worker, start, end, trial id) -> (worker, start, end, first trial id, count): spans
    of one worker that overlap or touch become one. Same colour, same row: the picture is
    the same at any zoom, with one SVG element instead of one per trial."""
    merged: list[tuple[str, float, float, int, int]] = []
    for worker, start, end, trial_id in sorted(spans):
        if merged and merged[-1][0] == worker and start <= merged[-1][2]:
            w, first_start, last_end, first_id, count = merged[-1]
            merged[-1] = (w, first_start, max(last_end, end), first_id, count + 1)
        else:
            merged.append((worker, start, end, trial_id, 1))
    return merged


def timeline(trials: Sequence[TrialRow]) -> go.Figure:
    started = [t for t in trials if t.started_at is not None]
    if not started:
        return empty("Worker timeline", "No trial has started yet")
    from app.db.types import utcnow

    now_ms = utcnow().timestamp() * 1000
    workers = sorted({t.worker or "unassigned" for t in started})
    pieces: dict[str, list[tuple[str, float, float, int, int]]] = {}
    for state in STATE_COLORS:
        spans = [
            (
                t.worker or "unassigned",
                t.started_at.timestamp() * 1000,
                t.finished_at.timestamp() * 1000 if t.finished_at else now_ms,
                t.id,
            )
            for t in started
            if t.state == state and t.started_at is not None
        ]
        if spans:
            pieces[state] = _merge_spans(spans)
    fig = go.Figure()
    for state, merged in pieces.items():
        xs: list[Any] = []
        ys: list[Any] = []
        ids: list[Any] = []
        more: list[str] = []
        for worker, start, end, first_id, count in merged:
            xs += [start, end, None]
            ys += [worker, worker, None]
            ids += [first_id, first_id, None]
            note = f" and {count - 1} more, overlapping" if count > 1 else ""
            more += [note, note, ""]
        # Always SVG: the bars of a state are one path, cheap however many there are.
        fig.add_trace(
            go.Scatter(
                x=np.asarray(xs, dtype=float),
                y=_o(ys),
                customdata=_f(ids),
                text=_o(more),
                mode="lines",
                name=state,
                line={"color": STATE_COLORS[state], "width": 10},
                hovertemplate="trial id %{customdata}%{text}<extra>" + state + "</extra>",
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
    marks = sum(len(series[name].steps) for name in names)
    for i, name in enumerate(names):
        s = series[name]
        traces[name] = i
        fig.add_trace(
            _scatter(
                marks,
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
