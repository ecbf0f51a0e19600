"""Figures of a study with several objectives: the Pareto front and the hypervolume.

The front is the feasible completed trials no other one dominates (app/trials/front.py
decides; these builders only draw). Two objectives are a scatter with the front joined by
its staircase; three are a 3-D scatter. Infeasible trials are grey, and their hover says
which constraint each broke and by how much."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from app.plots.builders.common import empty, floats, layout, objects, scatter

FRONT_COLOR = "#dc2626"
FEASIBLE_COLOR = "#2563eb"
INFEASIBLE_COLOR = "#9ca3af"


@dataclass(frozen=True)
class ParetoPoint:
    """One finished trial with all its objective values."""

    trial_id: int
    number: int
    values: Sequence[float]
    feasible: bool | None  # None: a constraint's metric was never reported
    on_front: bool
    broken: Sequence[str] = field(default_factory=tuple)  # "memory_gib 26 > 24 (by 2)"


@dataclass(frozen=True)
class Goal:
    metric: str
    direction: str


def _hover(point: ParetoPoint, goals: Sequence[Goal]) -> str:
    parts = [f"trial #{point.number}"]
    parts += [f"{g.metric} {v:.4g}" for g, v in zip(goals, point.values, strict=False)]
    if point.on_front:
        parts.append("on the Pareto front")
    if point.feasible is False:
        parts.append("infeasible: " + "; ".join(point.broken) if point.broken else "infeasible")
    elif point.feasible is None:
        parts.append("feasibility unknown (a constraint was not reported)")
    return "<br>".join(parts)


def _groups(points: Sequence[ParetoPoint]) -> list[tuple[str, list[ParetoPoint], dict]]:
    infeasible = [p for p in points if p.feasible is not True]
    feasible = [p for p in points if p.feasible is True and not p.on_front]
    front = [p for p in points if p.on_front]
    return [
        ("infeasible", infeasible, {"color": INFEASIBLE_COLOR, "symbol": "x", "size": 6}),
        ("feasible", feasible, {"color": FEASIBLE_COLOR, "size": 6, "opacity": 0.6}),
        (
            "Pareto front",
            front,
            {"color": FRONT_COLOR, "size": 9, "line": {"color": "white", "width": 1}},
        ),
    ]


def _axis_title(goal: Goal) -> str:
    return f"{goal.metric} ({'↓' if goal.direction == 'minimize' else '↑'})"


def pareto_front(
    points: Sequence[ParetoPoint],
    goals: Sequence[Goal],
    reference: Sequence[float] | None = None,
) -> go.Figure:
    """Every finished trial in objective space, the front highlighted (joined as a
    staircase with two objectives), infeasible trials grey."""
    title = "Pareto front"
    if len(goals) < 2:
        return empty(title, "The study has one objective: see the optimization history")
    points = [p for p in points if len(p.values) == len(goals)]
    if not points:
        return empty(title, "No finished trials yet")
    front_ids = [p.trial_id for p in points if p.on_front]
    meta = {
        "objectives": [g.metric for g in goals],
        "front": front_ids,
        "infeasible": [p.trial_id for p in points if p.feasible is False],
        "n_trials": len(points),
    }
    fig = go.Figure()
    if len(goals) == 2:
        for name, group, marker in _groups(points):
            if not group:
                continue
            fig.add_trace(
                scatter(
                    len(points),
                    x=floats([p.values[0] for p in group]),
                    y=floats([p.values[1] for p in group]),
                    mode="markers",
                    name=f"{name} ({len(group)})",
                    marker=marker,
                    customdata=floats([p.trial_id for p in group]),
                    text=objects([_hover(p, goals) for p in group]),
                    hovertemplate="%{text}<extra></extra>",
                )
            )
        front = sorted((p for p in points if p.on_front), key=lambda p: p.values[0])
        if len(front) > 1:
            fig.add_trace(
                go.Scatter(
                    x=floats([p.values[0] for p in front]),
                    y=floats([p.values[1] for p in front]),
                    mode="lines",
                    # Between two front points the dominated region's edge is a step.
                    line={"color": FRONT_COLOR, "width": 1.5, "shape": _step(goals)},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
        if reference is not None and len(reference) == 2:
            fig.add_trace(
                go.Scatter(
                    x=[reference[0]],
                    y=[reference[1]],
                    mode="markers",
                    name="reference point",
                    marker={"color": "#111827", "symbol": "cross-thin", "size": 10,
                            "line": {"width": 2, "color": "#111827"}},
                    hovertemplate="hypervolume reference point<extra></extra>",
                )
            )  # fmt: skip
        fig.update_xaxes(title_text=_axis_title(goals[0]))
        fig.update_yaxes(title_text=_axis_title(goals[1]))
    else:
        for name, group, marker in _groups(points):
            if not group:
                continue
            fig.add_trace(
                go.Scatter3d(
                    x=np.array([p.values[0] for p in group], dtype=np.float32),
                    y=np.array([p.values[1] for p in group], dtype=np.float32),
                    z=np.array([p.values[2] for p in group], dtype=np.float32),
                    mode="markers",
                    name=f"{name} ({len(group)})",
                    marker={**marker, "size": marker.get("size", 6) - 2},
                    customdata=floats([p.trial_id for p in group]),
                    text=objects([_hover(p, goals) for p in group]),
                    hovertemplate="%{text}<extra></extra>",
                )
            )
        fig.update_layout(
            scene={
                "xaxis": {"title": {"text": _axis_title(goals[0])}},
                "yaxis": {"title": {"text": _axis_title(goals[1])}},
                "zaxis": {"title": {"text": _axis_title(goals[2])}},
            }
        )
    title += f": {len(front_ids)} of {len(points)} trials"
    fig = layout(fig, title, hovermode="closest")
    return fig.update_layout(meta=meta, legend={"orientation": "h", "y": -0.2})


def _step(goals: Sequence[Goal]) -> str:
    """The staircase's corner: sorted by the first objective, each step holds the second
    objective's worse value until the next point."""
    return (
        "hv" if (goals[0].direction == "minimize") == (goals[1].direction == "minimize") else "vh"
    )


def hypervolume_history(
    numbers: Sequence[int],
    volumes: Sequence[float],
    reference: Sequence[float] | None,
    source: str | None,
    goals: Sequence[Goal],
) -> go.Figure:
    """The hypervolume of the feasible front after each finished trial."""
    title = "Hypervolume"
    if len(goals) < 2:
        return empty(title, "The study has one objective: see the optimization history")
    if not numbers or reference is None:
        return empty(title, "No feasible finished trials yet")
    fig = go.Figure(
        go.Scatter(
            x=list(numbers),
            y=floats(list(volumes)),
            mode="lines+markers",
            line={"color": FRONT_COLOR, "shape": "hv"},
            marker={"size": 4},
            name="hypervolume",
            hovertemplate="after trial #%{x}: %{y:.5g}<extra></extra>",
        )
    )
    point = ", ".join(f"{g.metric} {v:.4g}" for g, v in zip(goals, reference, strict=False))
    fig.update_xaxes(title_text="trial")
    fig.update_yaxes(title_text="hypervolume", rangemode="tozero")
    fig = layout(fig, f"{title} (reference {source or ''}: {point})".replace(" :", ":"))
    last = float(volumes[-1]) if volumes else None
    return fig.update_layout(
        meta={"reference_point": list(reference), "source": source, "last": last}
    )
