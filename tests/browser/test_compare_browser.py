"""The compare pages in Chromium: 3 trials picked in a study's table, then 2 studies
picked in the studies list (data seeded over REST)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

TRACES = "sel => { const el = document.querySelector(sel); return el.data.map(t => t.name); }"


def _study(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = study_body(limits={"max_trials": 20, "max_parallel_trials": 10}, **overrides)
    response = api.post("/studies", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _trial(api: httpx.Client, study_id: int, lr: float, batch: int, scale: float) -> int:
    params = {"lr": lr, "momentum": 0.95, "batch_size": batch, "optimizer": "adam"}
    trial = api.post(f"/studies/{study_id}/trials", json={"params": params}).json()
    points = [{"name": "loss", "step": s, "value": scale / (s + 1)} for s in range(12)]
    assert api.post(f"/trials/{trial['id']}/metrics", json=points).status_code == 200
    return int(trial["id"])


def test_compare_three_trials_then_two_studies(page: Any, api: httpx.Client) -> None:
    first = _study(api, name="compare first")
    ids = [
        _trial(api, first["id"], lr, batch, scale)
        for lr, batch, scale in [
            (0.01, 32, 1.0),
            (0.001, 64, 2.0),
            (0.01, 128, 3.0),
            (0.05, 32, 4.0),
        ]
    ]
    for trial_id in ids[:2]:
        assert api.post(f"/trials/{trial_id}/complete", json={}).status_code == 200
    assert api.post(f"/trials/{ids[2]}/cancel").status_code == 200
    picked = [ids[0], ids[1], ids[2]]

    page.goto(f"/studies/{first['id']}")
    page.wait_for_function(
        "() => document.querySelectorAll('#trials tbody tr[data-trial]').length === 4"
    )
    button = page.locator("#compare-trials")
    assert button.is_disabled()
    for trial_id in picked:
        page.check(f'#trials input[data-pick="{trial_id}"]')
    assert button.inner_text() == "Compare (3)" and button.is_enabled()
    button.click()
    page.wait_for_url(f"**/studies/{first['id']}/compare?trials=*")
    page.wait_for_selector("#compare-curves[data-painted]")
    names = page.evaluate(TRACES, "#compare-curves")
    assert len(names) == 3 and len(set(names)) == 3
    # The parameters that differ are highlighted; identical ones are hidden until asked.
    differs = page.eval_on_selector_all(
        "#compare-params tr.diff[data-group=param]", "rows => rows.map(r => r.dataset.row)"
    )
    assert set(differs) == {"lr", "batch_size"}
    assert page.locator('#compare-params tr[data-row="optimizer"]').is_hidden()
    screenshot(page, "compare-trials")
    page.uncheck("#compare-only-diff")
    assert page.locator('#compare-params tr[data-row="optimizer"]').is_visible()
    # Their decisions and state changes on one timeline, each trial's in its colour.
    events = page.locator("#compare-events tbody tr")
    assert {int(t) for t in events.evaluate_all("rows => rows.map(r => r.dataset.trial)")} == set(
        picked
    )
    assert "cancelled" in page.inner_text("#compare-events")
    # From a trial's page: itself and the study's best.
    # (In-app navigation throughout: no page load fetches Plotly again.)
    page.click(f'#compare-legend a[href="/trials/{ids[1]}"]')
    page.click("#compare-best")
    page.wait_for_url(f"**/compare?trials={ids[1]},{ids[0]}")
    page.wait_for_selector("#compare-curves[data-painted]")

    # Another study, maximizing another metric: the page warns.
    second = _study(
        api, name="compare second", objective={"metric": "acc", "direction": "maximize"}
    )
    for value in (0.5, 0.7, 0.6):
        trial = api.post(f"/studies/{second['id']}/trials").json()
        assert api.post(f"/trials/{trial['id']}/complete", json={"value": value}).status_code == 200
    page.click('.topbar a[href="/"] >> text=Studies')
    for study in (first, second):
        page.check(f'#studies input[data-pick="{study["id"]}"]')
    page.click("#compare-studies")
    page.wait_for_url("**/compare?studies=*")
    page.wait_for_selector("#compare-history[data-painted]")
    names = page.evaluate(TRACES, "#compare-history")
    assert len(names) == 4, names
    assert "directions differ" in page.inner_text("#compare-warnings")
    assert page.locator("#compare-summary tbody tr").count() == 2
    page.select_option("#compare-x", "time")
    page.wait_for_function(
        "() => document.querySelector('#compare-history').layout.xaxis.title.text.includes('since')"
    )
    screenshot(page, "compare-studies")

    bad = f"/studies/{first['id']}/compare?trials={ids[0]},99999999"
    page.evaluate(
        "p => { history.pushState(null, '', p); dispatchEvent(new PopStateEvent('popstate')); }",
        bad,
    )
    page.wait_for_function(
        "() => document.querySelector('#compare-error').textContent.includes('99999999')"
    )
