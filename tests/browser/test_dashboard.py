"""The dashboard in real Chromium against a real server; trials are driven over REST."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

XSS = "<img src=x onerror=alert(1)>"


def _study(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = api.post("/studies", json=study_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def _ask(api: httpx.Client, study_id: int) -> dict[str, Any]:
    response = api.post(f"/studies/{study_id}/trials")
    assert response.status_code == 201, response.text
    return response.json()


def _report(api: httpx.Client, trial_id: int, steps: range, scale: float = 1.0) -> None:
    points = [{"name": "loss", "step": s, "value": scale / (s + 1)} for s in steps]
    assert api.post(f"/trials/{trial_id}/metrics", json=points).status_code == 200


# Points on a running trial's own trace (layout.meta.live maps trial id -> [trace, cursor]).
LIVE_POINTS = """id => {
  const el = document.getElementById('chart-curves');
  const live = el && el.layout && el.layout.meta ? el.layout.meta.live[String(id)] : null;
  return live ? el.data[live[0]].x.length : 0;
}"""


def _curve_points(page: Any, trial_id: int) -> int:
    return page.evaluate(LIVE_POINTS, trial_id)


def test_create_study_through_the_form_with_a_validation_error(
    page: Any, api: httpx.Client
) -> None:
    page.goto("/studies/new")
    page.fill("#f-name", "form study")
    page.fill("#f-metric", "")
    # The regex tester shows what a metric definition extracts from pasted lines.
    page.click("#add-metric")
    page.fill(".metric-row .m-name", "loss")
    page.fill(".metric-row .m-regex", r"epoch (?P<step>\d+).*loss=(?P<value>[-+0-9.eE]+)")
    page.fill("#regex-sample", "epoch 1 loss=0.50\nnoise\nepoch 2 loss=0.25")
    result = page.locator('.regex-result[data-metric="loss"]')
    assert "step 1: 0.5" in result.inner_text() and "step 2: 0.25" in result.inner_text()
    page.fill('input[name="execution.command"]', "python train.py")
    screenshot(page, "create-study")

    page.click("#create-study")
    error = page.locator('[data-error-for="objective.metric"]')
    error.wait_for()
    assert "at least 1 character" in error.inner_text()
    assert re.search(r"/studies/new$", page.url)

    page.fill("#f-metric", "loss")
    page.click("#create-study")
    page.wait_for_url(re.compile(r"/studies/\d+$"))
    study_id = int(page.url.rsplit("/", 1)[1])
    study = api.get(f"/studies/{study_id}").json()
    assert study["name"] == "form study"
    assert study["execution"]["command"] == ["python", "train.py"]
    assert study["execution"]["metric_definitions"][0]["name"] == "loss"


def test_json_and_yaml_modes_round_trip(page: Any) -> None:
    page.goto("/studies/new")
    page.select_option("#template", "image-classifier")
    page.click('[data-mode="yaml"]')
    text = page.input_value("#study-text")
    assert "name: image classifier" in text and "val_acc" in text
    page.fill("#study-text", text.replace("name: image classifier", "name: yaml study"))
    page.click('[data-mode="form"]')
    assert page.input_value("#f-name") == "yaml study"
    page.click("#create-study")
    page.wait_for_url(re.compile(r"/studies/\d+$"))
    page.locator("#study-name").wait_for()
    assert "yaml study" in page.inner_text("#study-name")


def _plot_requests(page: Any) -> list[str]:
    """Every figure request the page has made so far, in order (`kind?query`)."""
    return page.evaluate(
        """() => performance.getEntriesByType('resource')
             .map(e => e.name).filter(n => n.includes('/plots/'))
             .map(n => n.split('/plots/')[1])"""
    )


def test_study_page_is_made_of_its_panels(page: Any, api: httpx.Client) -> None:
    study = _study(api, name="panels")
    done = _ask(api, study["id"])
    _report(api, done["id"], range(4))
    api.post(f"/trials/{done['id']}/complete", json={})

    page.goto(f"/studies/{study['id']}")
    page.wait_for_function("() => document.body.dataset.allCharts")
    assert "panels" in page.inner_text("#study-header #study-name")
    assert page.locator("#study-header #stop-study").count() == 1
    page.wait_for_function("() => document.querySelector('#fig-trials')?.textContent.includes('1')")
    kinds = page.eval_on_selector_all("#charts .chart", "els => els.map(e => e.dataset.kind)")
    assert sorted(kinds) == sorted(
        ["history", "curves", "parallel", "slices", "contour", "importance", "rungs", "timeline"]
    )
    assert page.eval_on_selector_all("#charts .chart", "els => els.every(e => e.dataset.painted)")
    page.locator("#trials-card tbody tr[data-trial]").first.wait_for()
    assert page.locator("#live-status.on").count() == 1  # the events stream is connected


def test_running_study_charts_change_without_reload(page: Any, api: httpx.Client) -> None:
    study = _study(api, name="live study")
    done = _ask(api, study["id"])
    _report(api, done["id"], range(10))
    api.post(f"/trials/{done['id']}/complete", json={})
    running = _ask(api, study["id"])
    _report(api, running["id"], range(3))

    page.goto(f"/studies/{study['id']}")
    page.wait_for_function("() => document.body.dataset.allCharts")
    page.wait_for_function("() => document.getElementById('live-status').classList.contains('on')")
    page.evaluate("() => { window.__sameDocument = true; }")
    assert _curve_points(page, running["id"]) == 3
    screenshot(page, "study")
    loaded = len(_plot_requests(page))
    assert loaded == 8

    # New points extend the running trial's curve: no figure is fetched again.
    _report(api, running["id"], range(3, 8))
    page.wait_for_function(f"() => ({LIVE_POINTS})({running['id']}) === 8", timeout=15_000)
    assert len(_plot_requests(page)) == loaded

    # A trial that starts reporting gets a trace of its own, still without a refetch.
    newcomer = _ask(api, study["id"])
    _report(api, newcomer["id"], range(2))
    page.wait_for_function(
        """n => [...document.getElementById('chart-curves').data].some(
             t => t.name === n && t.x.length === 2)""",
        arg=f"#{newcomer['number']} running",
        timeout=15_000,
    )
    assert not any(r.startswith(("curves", "history")) for r in _plot_requests(page)[loaded:])

    # A finished trial (not a new best) joins the history in place; only the figures its
    # new state changes are fetched again, the history and the curves are not.
    history_points = page.evaluate(
        "() => document.getElementById('chart-history').data[0].x.length"
    )
    api.post(f"/trials/{running['id']}/complete", json={})
    page.wait_for_function(
        "() => document.querySelector('#fig-states')?.textContent.includes('2 completed')",
        timeout=15_000,
    )
    page.wait_for_function(
        "n => document.getElementById('chart-history').data[0].x.length === n",
        arg=history_points + 1,
        timeout=15_000,
    )
    page.wait_for_function(
        """n => performance.getEntriesByType('resource').map(e => e.name)
             .filter(name => name.includes('/plots/')).slice(n)
             .some(name => name.includes('/plots/parallel'))""",
        arg=loaded,
        timeout=15_000,
    )
    refetched = {r.split("?")[0] for r in _plot_requests(page)[loaded:]}
    assert "parallel" in refetched and refetched.isdisjoint({"history", "curves"}), refetched
    assert page.evaluate("() => window.__sameDocument") is True

    # Server-side sort, filter and pages in the trials table.
    page.select_option("#order-by", "-number")
    page.wait_for_function(
        "() => document.querySelector('#trials tbody tr')?.textContent.startsWith('#2')"
    )
    page.check('input[data-state="stopped"]')
    page.wait_for_function(
        "() => document.querySelector('#trials tbody')?.textContent.includes('No trials')"
    )


def test_trials_table_pages_on_the_server(page: Any, api: httpx.Client) -> None:
    study = _study(api, name="many trials", limits={"max_trials": 100})
    for i in range(25):
        config = {
            "lr": 0.001 * (i + 1),
            "momentum": 0.95,
            "batch_size": 32,
            "optimizer": "adam",
            "epochs": 27,
        }
        response = api.post(
            f"/studies/{study['id']}/trials",
            json={"params": config, "value": 1.0 / (i + 1), "state": "completed"},
        )
        assert response.status_code == 201, response.text
    page.goto(f"/studies/{study['id']}")
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 20")
    first = page.eval_on_selector_all(
        "#trials tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
    )
    assert first == [f"#{n}" for n in range(24, 4, -1)]  # by value, the best first
    assert page.is_disabled("#trials-prev") and not page.is_disabled("#trials-next")

    page.click("#trials-next")
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 5")
    second = page.eval_on_selector_all(
        "#trials tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
    )
    assert second == [f"#{n}" for n in range(4, -1, -1)]
    assert page.is_disabled("#trials-next") and "page 2" in page.inner_text("#trials-page")
    # Every request for the table asked for one page, never the whole study.
    lists = page.evaluate(
        r"""() => performance.getEntriesByType('resource').map(e => e.name)
             .filter(n => /\/studies\/\d+\/trials\?/.test(n))"""
    )
    assert lists and all("limit=20" in url for url in lists), lists

    page.click("#trials-prev")
    page.wait_for_function(
        "() => document.querySelector('#trials tbody tr')?.cells[0].textContent === '#24'"
    )


def test_trial_page_shows_logs_live_and_stops_the_trial(page: Any, api: httpx.Client) -> None:
    study = _study(api, name="log study")
    trial = _ask(api, study["id"])
    first = "epoch 1 loss=0.9\n"
    api.post(f"/trials/{trial['id']}/logs", json={"offset": 0, "text": first})
    _report(api, trial["id"], range(2))

    page.goto(f"/trials/{trial['id']}")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('epoch 1')")
    api.post(
        f"/trials/{trial['id']}/logs", json={"offset": len(first), "text": "epoch 2 loss=0.8\n"}
    )
    page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('epoch 2')", timeout=15_000
    )
    page.wait_for_function("() => document.getElementById('trial-curves').dataset.painted")
    screenshot(page, "trial")

    page.click("#stop-trial")
    page.wait_for_function(
        "() => document.querySelector('#events')?.textContent.includes('cancelled')", timeout=15_000
    )
    assert api.get(f"/trials/{trial['id']}").json()["state"] == "cancelled"


def test_user_strings_render_as_text(page: Any, api: httpx.Client) -> None:
    study = _study(api, name=XSS, tags={"note": XSS})
    trial = _ask(api, study["id"])
    api.post(f"/trials/{trial['id']}/logs", json={"offset": 0, "text": XSS + "\n"})
    api.post(f"/trials/{trial['id']}/complete", json={"state": "failed", "error": XSS})

    page.goto("/")
    page.locator(f'tr[data-study="{study["id"]}"]').wait_for()
    assert XSS in page.inner_text("#studies")
    screenshot(page, "studies")
    page.goto(f"/studies/{study['id']}")
    page.wait_for_function("() => document.body.dataset.allCharts")
    assert XSS in page.inner_text("#study-name")
    page.goto(f"/trials/{trial['id']}")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('onerror')")
    assert XSS in page.inner_text("main")
    assert page.locator("main img").count() == 0
    # The `page` fixture fails the test on any alert() or page error.


def test_trial_page_scales_a_config_to_a_larger_world(page: Any, api: httpx.Client) -> None:
    # The seed chapter's example: 2 x 8 GPUs -> 4 x 8 GPUs doubles the learning rate.
    study = _study(
        api,
        name="world scale",
        space={
            "lr": {
                "type": "float",
                "low": 1e-6,
                "high": 1e-3,
                "scale": "log",
                "role": "learning_rate",
            },
            "batch": {"type": "int", "low": 1, "high": 64, "role": "per_device_batch_size"},
        },
    )
    trial = api.post(
        f"/studies/{study['id']}/trials", json={"params": {"lr": 5e-5, "batch": 22}}
    ).json()
    page.goto(f"/trials/{trial['id']}")
    page.click("#scale-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('scale-result')?.textContent.includes('0.0001')"
    )
    text = page.inner_text("#scale-result")
    assert "lr" in text and "5e-05" in text


def test_follow_up_study_links_to_its_parent(page: Any, api: httpx.Client) -> None:
    parent = _study(api, name="small scale")
    child = _study(api, name="world scale follow-up", parent_study_id=parent["id"])
    page.goto(f"/studies/{child['id']}")
    page.wait_for_selector("#lineage")
    page.click("#lineage a")
    page.wait_for_function(
        "() => document.getElementById('study-name')?.textContent.includes('small scale')"
    )
