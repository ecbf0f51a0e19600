"""Figures over the search space: parallel coordinates, slices and contours.

Parallel coordinates are SVG lines by default, as Plotly's parcoords is WebGL only and
takes seconds to draw without a GPU; it stays available on request for its brushing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from app.plots.builders.common import (
    INACTIVE,
    SVG_POINTS,
    empty,
    floats,
    inactive_position,
    is_log,
    layout,
    numeric_axis,
    scatter,
    scored_trials,
    thin,
)
from app.plots.repository import TrialRow

# Contours mark at most this many trials (an even sample; the surface uses them all).
CONTOUR_POINTS = 800
# Parallel coordinates draw one line per trial; past this count they only get slower
# to draw, not more readable.
PARALLEL_TRIALS = 2000
# Slices draw one marker per trial and parameter: as many trials as keep the figure in
# SVG (at 5 parameters, 800 trials in SVG draw in half the time of 2,000 in WebGL),
# and never fewer than this.
SLICE_MIN_TRIALS = 400
# Parallel coordinates: the height (axes run 0..1) of a conditional parameter's inactive
# trials, below its range, so that their lines go on to the objective.
INACTIVE_Y = -0.12
INACTIVE_COLOR = "#9ca3af"


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
    scored, note = thin(scored_trials(trials), PARALLEL_TRIALS, direction)
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    if not scored or not names:
        return empty("Parallel coordinates", "No finished trials yet")
    axes = [
        _parallel_axis(name, space[name], [t.params.get(name) for t in scored]) for name in names
    ]
    objective = floats([t.value for t in scored])
    axes.append(_parallel_axis(metric, {}, objective.tolist()))
    if brush:
        fig = go.Figure(
            go.Parcoords(
                dimensions=[axis.parcoords() for axis in axes],
                line={"color": objective, "colorscale": "Viridis", "showscale": True},
            )
        )
        fig = layout(fig, "Parallel coordinates" + note)
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
    # Trials where this (numeric, conditional) parameter was inactive; None: never.
    inactive: np.ndarray | None = None

    def scaled(self) -> np.ndarray:
        """Values on 0..1 (0.5 when the axis has a single value); inactive trials at
        `INACTIVE_Y`, below the axis."""
        if self.high <= self.low:
            out = np.where(np.isnan(self.values), np.nan, 0.5)
        else:
            out = (self.values - self.low) / (self.high - self.low)
        if self.inactive is not None:
            out = np.where(self.inactive, INACTIVE_Y, out)
        return out

    def parcoords(self) -> dict[str, Any]:
        """The dimension of Plotly's parcoords: inactive trials get a value and a tick of
        their own below the range, as parcoords cannot draw a missing value."""
        if self.inactive is None:
            return {"label": self.label, "values": self.values, **self.plotly_ticks}
        below = self.low + INACTIVE_Y * ((self.high - self.low) or 1.0)
        ticks = [(below, INACTIVE), *self.ticks]
        return {
            "label": self.label,
            "values": np.where(self.inactive, below, self.values),
            "tickvals": [value for value, _ in ticks],
            "ticktext": [label for _, label in ticks],
        }


def _parallel_axis(name: str, spec: Mapping[str, Any], raw: list[Any]) -> _ParallelAxis:
    values, categories = numeric_axis(spec, raw)
    if categories:
        column = floats(values)
        ticks = list(zip(categories["tickvals"], categories["ticktext"], strict=True))
        return _ParallelAxis(name, column, 0.0, float(len(ticks) - 1), ticks, categories)
    log = is_log(spec)
    inactive = None
    if spec.get("condition") and any(v is None for v in raw):
        inactive = np.array([v is None for v in raw])
    column = floats([v if isinstance(v, int | float) else None for v in values])
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            column = np.where(column > 0, np.log10(column), np.nan).astype(np.float32)
    finite = column[np.isfinite(column)]
    if not finite.size:
        return _ParallelAxis(name, column, 0.0, 1.0, [], {}, inactive)
    low, high = float(finite.min()), float(finite.max())
    if log:
        label = f"log10({name})"
        first, last = math.ceil(low), math.floor(high)
        step = max(1, math.ceil((last - first + 1) / 6))
        ticks = [(float(e), f"1e{e}") for e in range(first, last + 1, step)]
        ticks = ticks or [(low, f"{10**low:.3g}"), (high, f"{10**high:.3g}")]
        return _ParallelAxis(label, column, low, high, ticks, {}, inactive)
    stops = np.linspace(low, high, 5 if high > low else 1)
    if spec.get("type") == "int":
        stops = np.unique(np.round(stops))
    ticks = [(float(v), f"{v:.4g}") for v in stops]
    return _ParallelAxis(name, column, low, high, ticks, {}, inactive)


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
    ids = floats([t.id for t in scored])
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
        if axis.inactive is not None:
            annotations.append(
                {
                    "x": i,
                    "y": INACTIVE_Y,
                    "text": INACTIVE,
                    "showarrow": False,
                    "xanchor": "right",
                    "xshift": -3,
                    "font": {"size": 10, "color": INACTIVE_COLOR},
                    "bgcolor": "rgba(255,255,255,0.75)",
                }
            )
    bottom = INACTIVE_Y - 0.05 if any(axis.inactive is not None for axis in axes) else -0.04
    fig = layout(fig, "Parallel coordinates" + note, hovermode="closest")
    return fig.update_layout(
        shapes=shapes,
        annotations=annotations,
        xaxis={"visible": False, "range": [-0.45, n_axes - 0.8]},
        yaxis={"visible": False, "range": [bottom, 1.1]},
        margin={"l": 70, "r": 20, "t": 70, "b": 20},
    )


def slices(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, direction: str = "minimize"
) -> go.Figure:
    names = [n for n, spec in space.items() if spec.get("type") != "fixed"]
    limit = max(SLICE_MIN_TRIALS, SVG_POINTS // max(1, len(names)))
    scored, note = thin(scored_trials(trials), limit, direction)
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
    numbers = floats([t.number for t in scored])
    ys = floats([t.value for t in scored])
    ids = floats([t.id for t in scored])
    for i, name in enumerate(names):
        spec = space[name]
        raw = [t.params.get(name) for t in scored]
        values, axis = numeric_axis(spec, raw)
        r, c = i // cols + 1, i % cols + 1
        missing = np.array([v is None for v in raw])
        if not axis and spec.get("condition") and missing.any():
            # Inactive trials of a numeric parameter: grey markers in a column of their
            # own left of the range, labelled, rather than left out.
            at = inactive_position(spec, raw)
            fig.add_trace(
                scatter(
                    len(scored) * len(names),
                    x=np.full(int(missing.sum()), at, dtype=np.float32),
                    y=ys[missing],
                    mode="markers",
                    showlegend=False,
                    customdata=ids[missing],
                    hovertemplate=f"{name} {INACTIVE}<br>%{{y}}<extra></extra>",
                    marker={"color": INACTIVE_COLOR, "size": 5},
                ),
                row=r,
                col=c,
            )
            fig.add_annotation(
                x=math.log10(at) if is_log(spec) else at,
                y=0,
                yref="y domain",
                text=INACTIVE,
                showarrow=False,
                yanchor="bottom",
                font={"size": 10, "color": INACTIVE_COLOR},
                row=r,
                col=c,
            )
        fig.add_trace(
            scatter(
                len(scored) * len(names),
                x=floats(values),
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
        elif is_log(spec):
            fig.update_xaxes(row=r, col=c, type="log")
    fig.update_yaxes(title_text=metric, row=1, col=1)
    return layout(fig, "Parameter slices" + note, height=max(320, 280 * rows))


def contour(
    trials: Sequence[TrialRow], space: Mapping[str, Any], metric: str, x: str, y: str
) -> go.Figure:
    title = f"Contour: {x} vs {y}"
    scored = [
        t
        for t in scored_trials(trials)
        if t.params.get(x) is not None and t.params.get(y) is not None
    ]
    if x == y or x not in space or y not in space:
        return empty(title, "Choose two different parameters")
    if len(scored) < 3:
        return empty(title, "Needs at least three finished trials")
    xs, x_axis = numeric_axis(space[x], [t.params[x] for t in scored])
    ys, y_axis = numeric_axis(space[y], [t.params[y] for t in scored])
    zs = [t.value for t in scored]
    fig = go.Figure()
    grid = _grid(xs, ys, zs, is_log(space[x]) and not x_axis, is_log(space[y]) and not y_axis)
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
        scatter(
            len(xs),
            x=floats(xs),
            y=floats(ys),
            mode="markers",
            showlegend=False,
            customdata=floats([t.id for t in scored]),
            text=floats(zs),
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{metric} %{{text:.4g}}<extra></extra>",
            marker={"color": "#111827", "size": 5, "line": {"color": "white", "width": 1}},
        )
    )
    fig.update_xaxes(title_text=x, **(x_axis or ({"type": "log"} if is_log(space[x]) else {})))
    fig.update_yaxes(title_text=y, **(y_axis or ({"type": "log"} if is_log(space[y]) else {})))
    return layout(fig, title)


def _grid(
    xs: list[Any], ys: list[Any], zs: list[Any], log_x: bool, log_y: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The mean objective per cell of a square grid (log axes binned in log space); empty
    cells are NaN, which the contour bridges. Linear in the number of trials."""
    px, py, pz = floats(xs), floats(ys), floats(zs)
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
