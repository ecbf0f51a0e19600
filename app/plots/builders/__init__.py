"""Pure figure builders: plain rows in, `plotly.graph_objects.Figure` out, one module per
family of figures.

They know nothing about the database, so a notebook can feed them its own data. Large
studies stay fast in the browser: figures hold no more marks than a chart can show, and
markers switch from SVG to WebGL past `common.SVG_POINTS` (see `common`).
"""

from app.plots.builders.common import SCORED, STATE_COLORS, empty, rung_levels
from app.plots.builders.importance_bars import importance
from app.plots.builders.learning_curves import curve_trials, curves, trial_curves
from app.plots.builders.optimization_history import history
from app.plots.builders.parameters import contour, parallel, slices
from app.plots.builders.scheduling import rungs, timeline

__all__ = [
    "SCORED",
    "STATE_COLORS",
    "contour",
    "curve_trials",
    "curves",
    "empty",
    "history",
    "importance",
    "parallel",
    "rung_levels",
    "rungs",
    "slices",
    "timeline",
    "trial_curves",
]
