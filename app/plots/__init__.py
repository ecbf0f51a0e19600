"""Plotly figure builders: one home for the charts of the dashboard, reports and notebooks.

`service.figure(session, study, kind)` returns a `plotly.graph_objects.Figure`;
`GET /api/v1/studies/{id}/plots/{kind}` serves its JSON, `tunelab report` writes it into
a self-contained HTML file, and a notebook can call the builders directly.
"""

from app.plots.service import KINDS, figure, trial_figure

__all__ = ["KINDS", "figure", "trial_figure"]
