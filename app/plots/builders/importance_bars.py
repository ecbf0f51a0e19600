"""The parameter importance bars (the scores come from `app.importance`)."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from app.plots.builders.common import empty, layout


def importance(scores: Mapping[str, float], method: str, note: str = "") -> go.Figure:
    """One bar per parameter, the largest on top; `note` says why there are none, or that
    the fit used a sample."""
    if not scores:
        return empty("Parameter importance", note or "No parameter importance yet")
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
    title = "Parameter importance" + (f" ({note})" if note else "")
    return layout(fig, title, xaxis_title=method, height=max(260, 40 * len(items) + 100))
