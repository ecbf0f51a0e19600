"""How the study ran: trials per rung, and each worker's timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.plots.builders.common import (
    STATE_COLORS,
    empty,
    finite,
    floats,
    layout,
    objects,
    rung_levels,
)
from app.plots.repository import TrialRow


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
    scored = [t for t in reached if finite(t.value)]
    fig.add_trace(
        go.Box(
            x=objects([label(t.rung) for t in scored]),
            y=floats([t.value for t in scored]),
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            name=metric,
            showlegend=False,
            customdata=floats([t.id for t in scored]),
            marker={"size": 4, "color": "#2563eb"},
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="stack")
    return layout(fig, "Rungs")


# Gaps between two spans of one worker and state narrower than this share of the time
# axis are closed: about a pixel of the whole range on a chart card, they would cost a
# path segment each (a study of 100,000 trials would send millions of coordinates).
TIMELINE_RESOLUTION = 1 / 1000


def _merge_spans(
    spans: list[tuple[str, float, float, int]], tolerance: float = 0.0
) -> list[tuple[str, float, float, int, int]]:
    """(worker, start, end, trial id) -> (worker, start, end, first trial id, count): spans
    of one worker that overlap, touch, or are less than `tolerance` apart become one. Same
    colour, same row: one SVG element instead of one per trial."""
    merged: list[tuple[str, float, float, int, int]] = []
    for worker, start, end, trial_id in sorted(spans):
        if merged and merged[-1][0] == worker and start <= merged[-1][2] + tolerance:
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
    first_ms = min(t.started_at.timestamp() for t in started if t.started_at) * 1000
    last_ms = max(t.finished_at.timestamp() * 1000 if t.finished_at else now_ms for t in started)
    tolerance = max(0.0, last_ms - first_ms) * TIMELINE_RESOLUTION
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
            pieces[state] = _merge_spans(spans, tolerance)
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
            note = f" and {count - 1} more" if count > 1 else ""
            more += [note, note, ""]
        # Always SVG: the bars of a state are one path, cheap however many there are.
        fig.add_trace(
            go.Scatter(
                x=np.asarray(xs, dtype=float),
                y=objects(ys),
                customdata=floats(ids),
                text=objects(more),
                mode="lines",
                name=state,
                line={"color": STATE_COLORS[state], "width": 10},
                hovertemplate="trial id %{customdata}%{text}<extra>" + state + "</extra>",
            )
        )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=workers)
    fig.update_xaxes(type="date")  # x holds epoch milliseconds (UTC)
    return layout(
        fig, "Worker timeline", height=max(260, 28 * len(workers) + 140), xaxis_title="time"
    )
