from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.cli import main as cli
from app.plots.service import KINDS
from tests.fixtures.studies import study_body


def column(value: Any) -> np.ndarray:
    """A data column as plotly writes it: a list, or a base64 typed array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


def _study_with_trials(client: TestClient, n: int = 6, points: int = 20) -> tuple[int, list[int]]:
    study = client.post(
        "/api/v1/studies", json=study_body(limits={"max_trials": 50, "max_parallel_trials": 50})
    )
    study_id = study.json()["id"]
    ids = []
    for i in range(n):
        trial = client.post(f"/api/v1/studies/{study_id}/trials").json()
        ids.append(trial["id"])
        batch = [{"name": "loss", "step": s, "value": (i + 1) / (s + 1)} for s in range(points)]
        assert client.post(f"/api/v1/trials/{trial['id']}/metrics", json=batch).status_code == 200
        if i < n - 1:
            client.post(f"/api/v1/trials/{trial['id']}/complete", json={})
    return study_id, ids


def test_every_kind_is_served_as_figure_json(client: TestClient) -> None:
    study_id, ids = _study_with_trials(client)
    for kind in KINDS:
        response = client.get(f"/api/v1/studies/{study_id}/plots/{kind}")
        assert response.status_code == 200, (kind, response.text)
        figure = response.json()
        assert "data" in figure and "layout" in figure
    curves = client.get(f"/api/v1/studies/{study_id}/plots/curves").json()
    assert list(curves["layout"]["meta"]["live"]) == [str(ids[-1])]
    contour = client.get(
        f"/api/v1/studies/{study_id}/plots/contour", params={"x": "lr", "y": "batch_size"}
    )
    assert "lr vs batch_size" in contour.json()["layout"]["title"]["text"]
    lines = client.get(f"/api/v1/studies/{study_id}/plots/parallel").json()
    assert {t["type"] for t in lines["data"]} == {"scatter"}
    brush = client.get(f"/api/v1/studies/{study_id}/plots/parallel", params={"brush": "true"})
    assert brush.json()["data"][0]["type"] == "parcoords"
    bad_brush = client.get(f"/api/v1/studies/{study_id}/plots/parallel", params={"brush": "x"})
    assert bad_brush.status_code == 422 and bad_brush.json()["field"] == "brush"
    bad = client.get(f"/api/v1/studies/{study_id}/plots/pie")
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    assert client.get("/api/v1/studies/999/plots/history").status_code == 404


def test_long_curves_are_decimated_but_keep_their_last_point(client: TestClient) -> None:
    study_id, ids = _study_with_trials(client, n=1, points=5000)
    figure = client.get(f"/api/v1/trials/{ids[0]}/plots/curves").json()
    xs = column(figure["data"][0]["x"])
    assert 1000 <= len(xs) <= 2001 and xs[0] == 0 and xs[-1] == 4999
    assert figure["layout"]["meta"]["cursor"] > 0
    # The cursor continues with since=: nothing newer yet.
    page = client.get(
        f"/api/v1/trials/{ids[0]}/metrics", params={"since": figure["layout"]["meta"]["cursor"]}
    )
    assert page.json()["items"] == []


def test_curves_of_many_trials_load_only_the_drawn_ones(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.plots.builders.learning_curves.CURVE_TRIALS", 2)
    study_id, ids = _study_with_trials(client, n=6)
    figure = client.get(f"/api/v1/studies/{study_id}/plots/curves").json()
    assert "(2 of 5 finished" in figure["layout"]["title"]["text"]
    drawn = {int(i) for t in figure["data"] for i in column(t["customdata"]) if i == i}
    best = client.get(f"/api/v1/studies/{study_id}").json()["best_trial_id"]
    assert ids[0] in drawn and ids[-1] in drawn and best in drawn  # lowest loss, running
    assert len(drawn) == 3 and list(figure["layout"]["meta"]["live"]) == [str(ids[-1])]


def test_summary_counts_trials_and_compute(client: TestClient) -> None:
    study_id, _ = _study_with_trials(client)
    summary = client.get(f"/api/v1/studies/{study_id}/summary").json()
    assert summary["trial_counts"] == {"completed": 5, "running": 1}
    assert summary["best_value"] is not None and summary["compute_used_s"] >= 0


def test_figures_share_loaded_trials_until_a_trial_changes(client: TestClient) -> None:
    study_id, ids = _study_with_trials(client)

    def counts() -> dict[str, int]:
        return client.get(f"/api/v1/studies/{study_id}/summary").json()["trial_counts"]

    assert counts() == {"completed": 5, "running": 1}
    # Within the rows' lifetime, a committed change is seen at once by the next request.
    client.post(f"/api/v1/trials/{ids[-1]}/complete", json={})
    assert counts() == {"completed": 6}
    client.post(f"/api/v1/studies/{study_id}/trials")
    assert counts() == {"completed": 6, "running": 1}
    history = client.get(f"/api/v1/studies/{study_id}/plots/history").json()
    assert sum(len(column(t["x"])) for t in history["data"] if t["mode"] == "markers") == 6


def test_report_is_one_self_contained_html_file(client: TestClient, settings, tmp_path) -> None:
    body = study_body(name="<script>alert(1)</script>")
    study_id = client.post("/api/v1/studies", json=body).json()["id"]
    trial = client.post(f"/api/v1/studies/{study_id}/trials").json()
    client.post(
        f"/api/v1/trials/{trial['id']}/metrics", json=[{"name": "loss", "step": 0, "value": 0.5}]
    )
    client.post(f"/api/v1/trials/{trial['id']}/complete", json={})
    out = tmp_path / "report.html"
    assert (
        cli(
            [
                "report",
                str(study_id),
                "-o",
                str(out),
                "--database-url",
                settings.resolved_database_url,
            ]
        )
        == 0
    )
    text = out.read_text()
    assert (
        "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    )
    assert "cdn" not in text.lower().split("plotly.newplot")[-1]
    for kind in KINDS:
        start = text.index(f'id="fig-{kind}">') + len(f'id="fig-{kind}">')
        json.loads(text[start : text.index("</script>", start)])


def test_rows_are_brought_up_to_date_from_the_history_version(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.plots import rows
    from app.plots.repository import PlotRepository

    study_id, ids = _study_with_trials(client)
    reads: list[tuple[bool, int, int]] = []
    original = PlotRepository.trials

    def spy(self: PlotRepository, study: int, full: bool = True, since_version: int = 0) -> Any:
        found = original(self, study, full, since_version)
        reads.append((full, since_version, len(found)))
        return found

    monkeypatch.setattr(PlotRepository, "trials", spy)
    rows.clear()
    summary = f"/api/v1/studies/{study_id}/summary"
    client.get(summary)
    client.get(f"/api/v1/studies/{study_id}/plots/parallel")
    assert reads == [(True, 0, 6)]  # one load for both
    client.post(f"/api/v1/trials/{ids[-1]}/complete", json={})
    assert client.get(summary).json()["trial_counts"] == {"completed": 6}
    assert len(reads) == 2 and reads[1][1] > 0 and reads[1][2] == 1  # only the changed trial
    # The history reads light rows, or the full ones when they are current.
    client.get(f"/api/v1/studies/{study_id}/plots/history")
    assert len(reads) == 2
