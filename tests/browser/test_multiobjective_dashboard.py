"""A two-objective study with a constraint, a conditional parameter and a prior, created in
the browser's form; its Pareto front and hypervolume grow live as trials finish over
REST, infeasible trials greyed, with objective and constraint columns in the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

FRONT = """() => {
  const el = document.getElementById('chart-pareto');
  return el && el.layout && el.layout.meta ? el.layout.meta.front.length : -1;
}"""


def _fill_form(page: Any, momentum_parent: str) -> None:
    page.goto("/studies/new")
    page.fill("#f-name", "accuracy vs latency")
    page.fill("#f-metric", "acc")
    page.select_option('select[name="objective.direction"]', "maximize")
    page.click("#add-objective")
    second = page.locator(".objective-row").nth(1)
    second.locator(".o-metric").fill("latency_ms")
    second.locator(".o-direction").select_option("minimize")
    page.click("#add-constraint")
    page.fill(".constraint-row .k-metric", "memory_gib")
    page.select_option(".constraint-row .k-op", "<=")
    page.fill(".constraint-row .k-value", "24")
    # The template's lr gets a prior; then optimizer, and momentum only for sgd.
    first = page.locator(".space-row").nth(0)
    first.locator(".p-prior").fill("0.001")
    first.locator(".p-confidence").select_option("high")
    page.click("#add-param")
    optimizer = page.locator(".space-row").nth(1)
    optimizer.locator(".p-name").fill("optimizer")
    optimizer.locator(".p-type").select_option("categorical")
    optimizer.locator(".p-choices").fill("sgd, adam")
    page.click("#add-param")
    momentum = page.locator(".space-row").nth(2)
    momentum.locator(".p-name").fill("momentum")
    momentum.locator(".p-low").fill("0.5")
    momentum.locator(".p-high").fill("0.99")
    momentum.locator(".p-condition").fill(f"{momentum_parent}=sgd")


def _finish(api: httpx.Client, study_id: int, acc: float, latency: float, memory: float) -> dict:
    trial = api.post(f"/studies/{study_id}/trials").json()
    points = [{"name": "memory_gib", "step": 1, "value": memory}]
    assert api.post(f"/trials/{trial['id']}/metrics", json=points).status_code == 200
    done = api.post(f"/trials/{trial['id']}/complete", json={"values": [acc, latency]})
    assert done.status_code == 200, done.text
    return trial


def test_two_objective_study_from_the_form_shows_its_front_live(
    page: Any, api: httpx.Client
) -> None:
    # A condition on a parameter that does not exist is refused, marked on its field.
    _fill_form(page, "optimiser")
    page.click("#create-study")
    error = page.locator('[data-error-for="space.momentum.condition.optimiser"]')
    error.wait_for()
    assert "not a parameter" in error.inner_text()
    assert re.search(r"/studies/new$", page.url)

    page.locator(".space-row").nth(2).locator(".p-condition").fill("optimizer=sgd")
    screenshot(page, "create-multiobjective")
    page.click("#create-study")
    page.wait_for_url(re.compile(r"/studies/\d+$"))
    study_id = int(page.url.rsplit("/", 1)[1])
    study = api.get(f"/studies/{study_id}").json()
    assert [(o["metric"], o["direction"]) for o in study["objectives"]] == [
        ("acc", "maximize"),
        ("latency_ms", "minimize"),
    ]
    assert study["constraints"] == [{"metric": "memory_gib", "op": "<=", "value": 24.0}]
    assert study["space"]["momentum"]["condition"] == {"optimizer": ["sgd"]}
    assert study["space"]["lr"]["prior"] == {"value": 0.001, "confidence": "high"}

    # The page shows the front and the hypervolume for such a study, empty at first.
    page.wait_for_function("() => document.body.dataset.allCharts")
    page.wait_for_function("() => document.getElementById('live-status').classList.contains('on')")
    page.locator("#chart-pareto[data-painted]").wait_for(timeout=30_000)
    page.locator("#chart-hypervolume[data-painted]").wait_for(timeout=30_000)
    headers = page.locator("#trials thead th").all_inner_texts()
    assert "acc ↑" in headers and "latency_ms ↓" in headers and "memory_gib <= 24" in headers

    # Trials finish over REST: the front grows without a reload.
    page.evaluate("() => { window.__sameDocument = true; }")
    first = _finish(api, study_id, 0.80, 20.0, 10)
    page.wait_for_function(f"() => ({FRONT})() === 1", timeout=30_000)
    _finish(api, study_id, 0.90, 30.0, 12)  # a second front point (better acc, slower)
    _finish(api, study_id, 0.70, 40.0, 12)  # dominated
    broken = _finish(api, study_id, 0.99, 5.0, 30)  # would dominate all, but 6 GiB over
    page.wait_for_function(
        """() => {
          const el = document.getElementById('chart-pareto');
          const meta = el && el.layout && el.layout.meta;
          return meta && meta.n_trials === 4 && meta.front.length === 2;
        }""",
        timeout=30_000,
    )
    meta = page.evaluate("() => document.getElementById('chart-pareto').layout.meta")
    assert meta["infeasible"] == [broken["id"]]
    grey = page.evaluate(
        """() => document.getElementById('chart-pareto').data
             .find(t => t.name.startsWith('infeasible')).marker.color"""
    )
    assert grey == "#9ca3af"
    page.wait_for_function(
        """() => {
          const el = document.getElementById('chart-hypervolume');
          return el && el.data && el.data[0] && el.data[0].x.length === 4;
        }""",
        timeout=30_000,
    )
    assert page.evaluate("() => window.__sameDocument") is True

    # The table: a row per trial with its objectives, the broken constraint in red.
    page.wait_for_function(
        "() => document.querySelectorAll('#trials tbody tr[data-trial]').length === 4",
        timeout=30_000,
    )
    row = page.locator(f'#trials tr[data-trial="{broken["id"]}"]')
    assert "infeasible" in (row.get_attribute("class") or "")
    assert "over by 6" in row.locator('td[data-constraint="memory_gib"]').inner_text()
    first_row = page.locator(f'#trials tr[data-trial="{first["id"]}"]')
    assert first_row.get_attribute("data-pareto") == "1"
    assert first_row.locator('td[data-objective="latency_ms"]').inner_text() == "20"
    screenshot(page, "pareto")

    # The trial page says which constraint the trial broke and by how much.
    page.goto(f"/trials/{broken['id']}")
    page.wait_for_function(
        "() => document.body.textContent.includes('constraint broken')", timeout=30_000
    )
    details = page.inner_text("body")
    assert "memory_gib <= 24" in details and "over by 6" in details
    assert "objective values" in details


SCRIPT = Path(__file__).resolve().parent / "scripts" / "two_objectives.py"


def test_the_server_runs_a_real_script_and_the_front_grows(page: Any, api: httpx.Client) -> None:
    """The whole path: the form, the server's own runner launching a real script with
    only the active parameters on its command line, metrics parsed from its output into
    two objectives and a constraint, the front redrawn live."""
    _fill_form(page, "optimizer")
    page.fill('input[name="limits.max_trials"]', "8")
    page.fill('input[name="limits.max_parallel_trials"]', "2")
    command = f"{{python}} {SCRIPT} --lr {{lr}} --optimizer {{optimizer}} --momentum {{momentum}}"
    page.fill('input[name="execution.command"]', command)
    page.select_option('select[name="execution.args"]', "template")
    for k, metric in enumerate(["acc", "latency_ms", "memory_gib"]):
        page.click("#add-metric")
        row = page.locator(".metric-row").nth(k)
        row.locator(".m-name").fill(metric)
        row.locator(".m-regex").fill(rf"step (?P<step>\d+) {metric}=(?P<value>\S+)")
    page.click("#create-study")
    page.wait_for_url(re.compile(r"/studies/\d+$"))
    study_id = int(page.url.rsplit("/", 1)[1])

    # The front grows while the study runs: seen with at least 3 trials on the chart.
    grown = 0
    done = None
    for _ in range(240):
        meta = page.evaluate("() => document.getElementById('chart-pareto')?.layout?.meta ?? null")
        if meta:
            grown = max(grown, meta["n_trials"])
        study = api.get(f"/studies/{study_id}").json()
        if study["state"] != "running":
            done = study
            break
        page.wait_for_timeout(500)
    listed = api.get(f"/studies/{study_id}/trials", params={"limit": 50}).json()["items"]
    states = [(t["state"], t["error"]) for t in listed]
    assert done is not None and done["state"] == "completed", (done, states)
    trials = api.get(f"/studies/{study_id}/trials", params={"limit": 50}).json()["items"]
    assert {t["state"] for t in trials} == {"completed"}, [t["error"] for t in trials]
    for trial in trials:
        assert ("momentum" in trial["params"]) == (trial["params"]["optimizer"] == "sgd")
        assert trial["values"] is not None and len(trial["values"]) == 2
    log = api.get(f"/trials/{trials[0]['id']}/logs").json()["text"]
    assert "{momentum}" not in log
    # Every finished trial ends up on the chart, the front being the API's Pareto set.
    page.wait_for_function(
        "n => document.getElementById('chart-pareto')?.layout?.meta?.n_trials === n",
        arg=len(trials),
        timeout=30_000,
    )
    meta = page.evaluate("() => document.getElementById('chart-pareto').layout.meta")
    pareto = api.get(f"/studies/{study_id}/pareto").json()
    assert sorted(meta["front"]) == sorted(t["id"] for t in pareto["trials"])
    # Drawn in steps while it ran, not only once at the end.
    assert 0 < grown or meta["n_trials"] == len(trials)
