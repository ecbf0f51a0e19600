"""The population view of a pbt study in real Chromium; members are driven over REST."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _pbt_study(api: httpx.Client) -> dict[str, Any]:
    body = {
        "name": "population",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}},
        "strategy": {"name": "pbt", "seed": 3, "population_size": 4, "perturbation_interval": 2},
        "fidelity": {"param": "epoch", "min": 1, "max": 6},
        "limits": {"max_trials": 4, "max_parallel_trials": 4},
    }
    response = api.post("/studies", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _ask(api: httpx.Client, study_id: int) -> dict[str, Any]:
    response = api.post(f"/studies/{study_id}/trials")
    assert response.status_code == 201, response.text
    return response.json()


def _report(api: httpx.Client, trial_id: int, step: int, loss: float) -> dict[str, Any]:
    response = api.post(
        f"/trials/{trial_id}/metrics", json=[{"name": "loss", "step": step, "value": loss}]
    )
    assert response.status_code == 200, response.text
    return response.json()


def _boundary(api: httpx.Client, study_id: int, trials: list[dict[str, Any]], step: int) -> None:
    """Every member reports `step` (the worst has the largest number), then resumes."""
    for rank, trial in enumerate(trials):
        assert _report(api, trial["id"], step, (rank + 1) / step)["decision"] == "pause"
    for _ in trials:
        assert _ask(api, study_id)["resume"]


def test_members_exploits_and_schedules_show_live_and_replay(page: Any, api: httpx.Client) -> None:
    study = _pbt_study(api)
    study_id = study["id"]
    trials = [_ask(api, study_id) for _ in range(4)]
    _boundary(api, study_id, trials, 2)

    edges = len(api.get(f"/studies/{study_id}/population").json()["edges"])
    assert edges >= 1
    page.goto(f"/studies/{study_id}")
    page.click("#population-link")
    page.wait_for_url(f"**/studies/{study_id}/population")
    page.wait_for_function(
        f"() => document.querySelector('#population-chart')?.dataset.edges === '{edges}'"
    )
    rows = page.locator("#exploits tbody tr")
    assert rows.count() == edges
    # The worst member copied the best one's checkpoint.
    assert any("#3" in r and "#0" in r for r in rows.all_inner_texts())
    page.wait_for_selector("#schedule-chart .main-svg")
    assert page.locator("#schedule-param option").all_inner_texts() == ["lr"]

    # Live: the next boundary's exploits appear without a reload.
    _boundary(api, study_id, trials, 4)
    more = len(api.get(f"/studies/{study_id}/population").json()["edges"])
    assert more > edges
    page.wait_for_function(
        f"() => document.querySelectorAll('#exploits tbody tr').length === {more}"
    )
    screenshot(page, "population")

    # The receiver's trial page shows where its weights came from.
    receiver = trials[3]
    page.goto(f"/trials/{receiver['id']}")
    page.wait_for_selector("#lineage-panel:not([hidden])")
    lineage = page.locator("#lineage").inner_text()
    assert "copied the checkpoint of trial #0" in lineage
    assert page.locator("#schedule tbody tr").count() >= 2

    # Replay the best member's schedule from the population view.
    for rank, trial in enumerate(trials):
        _report(api, trial["id"], 6, (rank + 1) / 6)
        assert api.post(f"/trials/{trial['id']}/complete", json={}).status_code == 200
    page.goto(f"/studies/{study_id}/population")
    page.click("#replay-best")
    page.wait_for_selector("#replay-note a")
    assert "runs the best member's schedule" in page.locator("#replay-note").inner_text()
    replayed = [
        t for t in api.get(f"/studies/{study_id}/trials").json()["items"] if t["source"] == "replay"
    ]
    assert len(replayed) == 1 and replayed[0]["extra"]["replay"]["trial_id"] == trials[0]["id"]
