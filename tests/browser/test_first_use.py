"""First-use findings in the dashboard: the trials table opens best first in the study's
direction, and a curve of one point gets axes around it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

FIRST_CELLS = "rows => rows.map(r => r.cells[0].textContent)"


def _study_with_values(api: httpx.Client, direction: str, values: list[float]) -> int:
    body = study_body(
        name=f"best first {direction}",
        objective={"metric": "loss", "direction": direction},
        limits={"max_trials": 50},
    )
    study = api.post("/studies", json=body).json()
    for i, value in enumerate(values):
        config = {
            "lr": 0.001 * (i + 1),
            "momentum": 0.95,
            "batch_size": 32,
            "optimizer": "adam",
            "epochs": 27,
        }
        response = api.post(
            f"/studies/{study['id']}/trials",
            json={"params": config, "value": value, "state": "completed"},
        )
        assert response.status_code == 201, response.text
    return int(study["id"])


@pytest.mark.parametrize(
    ("direction", "expected", "order"),
    [("maximize", ["#2", "#0", "#1"], "-value"), ("minimize", ["#1", "#0", "#2"], "value")],
)
def test_trials_table_opens_best_first(
    page: Any, api: httpx.Client, direction: str, expected: list[str], order: str
) -> None:
    study_id = _study_with_values(api, direction, [0.5, 0.1, 0.9])
    page.goto(f"/studies/{study_id}")
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 3")
    assert page.eval_on_selector_all("#trials tbody tr", FIRST_CELLS) == expected
    assert page.input_value("#order-by") == order
    # A sort the user picks stays picked.
    page.select_option("#order-by", "number")
    page.wait_for_function(
        "() => document.querySelector('#trials tbody tr')?.cells[0].textContent === '#0'"
    )


AXES = """() => {
  const el = document.getElementById('trial-curves');
  return [el._fullLayout.xaxis.range, el._fullLayout.yaxis.range, el.data[0].x.length];
}"""


def test_a_one_point_curve_is_drawn_around_its_point(page: Any, api: httpx.Client) -> None:
    study = api.post("/studies", json=study_body(name="one point")).json()
    trial = api.post(f"/studies/{study['id']}/trials").json()
    point = [{"name": "loss", "step": 1, "value": 0.25}]
    assert api.post(f"/trials/{trial['id']}/metrics", json=point).status_code == 200
    page.goto(f"/trials/{trial['id']}")
    page.wait_for_function("() => document.getElementById('trial-curves').dataset.painted")
    x_range, y_range, n = page.evaluate(AXES)
    assert n == 1
    assert x_range == [0, pytest.approx(1.1)]
    assert y_range == [pytest.approx(0.225), pytest.approx(0.275)]
    # A second point: the figure is drawn anew, its axes left to Plotly.
    more = [{"name": "loss", "step": 5, "value": 0.05}]
    assert api.post(f"/trials/{trial['id']}/metrics", json=more).status_code == 200
    page.wait_for_function(
        "() => document.getElementById('trial-curves').data[0].x.length === 2", timeout=15_000
    )
    x_range, y_range, _ = page.evaluate(AXES)
    assert x_range[1] >= 5 and y_range[0] <= 0.05
