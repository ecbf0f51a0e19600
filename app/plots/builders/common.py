"""What every figure shares: state colours, the SVG-or-WebGL choice, typed columns, the
layout, and the thinning of large studies to the trials a chart can show.

Lines are SVG (a trace's segments cost little however many there are); markers are SVG
up to `SVG_POINTS` per figure and WebGL beyond, where each SVG marker, an element of its
own, costs more than WebGL's drawing in software (a browser without a GPU).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.plots.repository import TrialRow

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
# Marks (markers, or separate line pieces) per figure up to which SVG is drawn; past it,
# WebGL: in a browser without a GPU, ten thousand SVG markers take about twice as long
# as the same markers in WebGL, a few thousand about as long.
SVG_POINTS = 4_000


def scatter(n_marks: int, **trace: Any) -> go.Scatter | go.Scattergl:
    """A scatter trace, SVG or WebGL by the number of marks of its figure (see the
    module docstring)."""
    return go.Scatter(**trace) if n_marks <= SVG_POINTS else go.Scattergl(**trace)


def floats(values: Sequence[Any]) -> np.ndarray:
    """A float column (None becomes NaN, a gap): numpy arrays skip plotly's per-element
    validation, which dominates at 10,000 trials, and travel as base64 typed arrays.
    Single precision halves the bytes and is finer than any screen."""
    return np.asarray(values, dtype=np.float32)


def objects(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
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
    return layout(fig, title)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def scored_trials(trials: Sequence[TrialRow]) -> list[TrialRow]:
    return [t for t in trials if t.state in SCORED and finite(t.value)]


def is_log(spec: Mapping[str, Any]) -> bool:
    return spec.get("scale") in ("log", "reverse_log")


# The label of a conditional parameter's value in trials where it was inactive (absent
# from the trial's params): charts show these trials rather than drop them.
INACTIVE = "inactive"


def numeric_axis(spec: Mapping[str, Any], values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Values to plot and axis settings: categories become their index; a missing value
    (an inactive conditional parameter) is a category of its own, labelled "inactive"."""
    if spec.get("type") == "categorical" or any(isinstance(v, str | bool) for v in values):
        choices = list(spec.get("choices") or [])
        labels = [str(c) for c in choices]
        for v in values:
            if v not in choices:
                choices.append(v)
                labels.append(INACTIVE if v is None else str(v))
        index = {repr(c): i for i, c in enumerate(choices)}
        return [index.get(repr(v)) for v in values], {
            "tickvals": list(range(len(choices))),
            "ticktext": labels,
        }
    return values, {}


def inactive_position(spec: Mapping[str, Any], values: Sequence[Any]) -> float:
    """Where a numeric axis puts its inactive trials: a little below the values it shows
    (in the axis's own units, below in log space on a log axis)."""
    present = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    low = min(present, default=float(spec.get("low", 0.0)))
    high = max(present, default=float(spec.get("high", 1.0)))
    if is_log(spec) and low > 0 and high > 0:
        return low / max(high / low, 10.0) ** 0.1
    return low - 0.1 * ((high - low) or 1.0)


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


def thin(scored: list[TrialRow], limit: int, direction: str) -> tuple[list[TrialRow], str]:
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
