"""`GET /studies/{id}/plots/{kind}` and `GET /trials/{id}/plots/curves`: Plotly figure JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.db.session import SessionDep
from app.plots import service
from app.plots.schemas import StudySummary
from app.plots.serialize import figure_json
from app.studies import service as studies
from app.trials import service as trials

router = APIRouter(tags=["plots"])

KindPath = Annotated[str, Path(description=f"One of {', '.join(service.KINDS)}")]


def _json(figure_json: str) -> Response:
    return Response(
        figure_json, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/studies/{study_id}/plots/{kind}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "Plotly figure"}},
)
def study_plot(
    study_id: int,
    kind: KindPath,
    session: SessionDep,
    metric: Annotated[
        str | None, Query(description="curves: the metric (default: objective)")
    ] = None,
    x: Annotated[str | None, Query(description="contour: parameter on x")] = None,
    y: Annotated[str | None, Query(description="contour: parameter on y")] = None,
    brush: Annotated[
        bool,
        Query(
            description="parallel: Plotly's parcoords, whose axes filter the lines by "
            "dragging (always WebGL), instead of SVG lines"
        ),
    ] = False,
) -> Response:
    """A figure of the study (`plotly.io.from_json` reads it). Long curves are decimated."""
    study = studies.get_study(session, study_id)
    options = {k: v for k, v in {"metric": metric, "x": x, "y": y}.items() if v}
    if brush:
        options["brush"] = "true"
    return _json(service.figure_json(session, study, kind, options))


@router.get(
    "/trials/{trial_id}/plots/curves",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "Plotly figure"}},
)
def trial_plot(trial_id: int, session: SessionDep) -> Response:
    """Every metric of a trial, decimated; `layout.meta.cursor` continues with `since=`."""
    trial = trials.get_trial(session, trial_id)
    return _json(figure_json(service.trial_figure(session, trial)))


@router.get("/studies/{study_id}/summary")
def study_summary(study_id: int, session: SessionDep) -> StudySummary:
    """Key figures: best value, trials by state, compute used and saved by early stopping."""
    study = studies.get_study(session, study_id)
    return StudySummary.model_validate(service.summary(session, study))
