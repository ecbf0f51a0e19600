"""The optimization history: each finished trial's value by trial number, and the best so far."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app.plots.builders.common import (
    SCORED,
    STATE_COLORS,
    SVG_POINTS,
    empty,
    floats,
    layout,
    scatter,
    scored_trials,
    thin,
)
from app.plots.repository import TrialRow

# Markers of at most this many trials (the best half and an even sample of the rest, in
# trial order), as many as parallel coordinates draw: they stay SVG, which draws them
# faster than a browser without a GPU sets WebGL up (the history is the page's first
# chart); 100,000 markers would take seconds and only pile up.
HISTORY_TRIALS = SVG_POINTS // 2


def history(trials: Sequence[TrialRow], direction: str, metric: str) -> go.Figure:
    """Markers per finished state and the best-so-far staircase. `layout.meta` tells the
    dashboard where a newly finished trial goes without a refetch: `traces` (state ->
    trace index), `best_trace`, `best` (the best value) and `direction`; a trial that
    improves the best redraws the figure instead (the staircase may change anywhere)."""
    scored = scored_trials(trials)
    if not scored:
        return empty("Optimization history", "No finished trials yet")
    shown, note = thin(scored, HISTORY_TRIALS, direction)
    fig = go.Figure()
    traces: dict[str, int] = {}
    for state in SCORED:
        rows = [t for t in shown if t.state == state]
        if rows:
            traces[state] = len(fig.data)
            fig.add_trace(
                scatter(
                    len(shown),
                    x=floats([t.number for t in rows]),
                    y=floats([t.value for t in rows]),
                    mode="markers",
                    name=state,
                    marker={"color": STATE_COLORS[state], "size": 6, "opacity": 0.75},
                    customdata=floats([t.id for t in rows]),
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
            x=floats(xs),
            y=floats(ys),
            mode="lines",
            name="best so far",
            line={"color": "#111827", "shape": "hv", "width": 2},
        )
    )
    meta = {"traces": traces, "best_trace": len(fig.data) - 1, "best": best, "direction": direction}
    title = "Optimization history" + note
    return layout(fig, title, xaxis_title="trial", yaxis_title=metric, meta=meta)
