from __future__ import annotations

import math
import random

import pytest

from app.engine.space import SearchSpace
from app.importance.compute import compute
from app.importance.service import clear_cache

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "epochs": {"type": "fixed", "value": 3},
}


def objective(config):
    # Loss depends mostly on log(lr), a little on the optimizer, not on dropout.
    return (math.log10(config["lr"]) + 3) ** 2 + (0.3 if config["optimizer"] == "sgd" else 0.0)


def configs(n, seed=0):
    rng = random.Random(seed)
    return [
        {
            "lr": 10 ** rng.uniform(-5, -1),
            "dropout": rng.uniform(0, 0.5),
            "optimizer": rng.choice(["adam", "sgd"]),
            "epochs": 3,
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("method", ["fanova", "permutation"])
def test_the_parameter_that_matters_ranks_first(method):
    space = SearchSpace.from_dict(SPACE)
    found = configs(40)
    result = compute(space, found, [objective(c) for c in found], method)
    assert list(result.params)[0] == "lr"
    assert result.params["lr"] > 0.6
    assert "epochs" not in result.params  # fixed: explains nothing
    assert sum(result.params.values()) == pytest.approx(1.0)


def test_too_few_trials():
    result = compute(SearchSpace.from_dict(SPACE), configs(3), [1.0, 2.0, 3.0])
    assert result.params == {} and "at least 5" in result.note


def test_endpoint_caches_by_finished_trials(client):
    clear_cache()
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "imp",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": SPACE,
            "limits": {"max_trials": 50},
        },
    ).json()
    url = f"/api/v1/studies/{study['id']}/importance"
    for config in configs(30):
        client.post(
            f"/api/v1/studies/{study['id']}/trials",
            json={"params": config, "value": objective(config), "state": "completed"},
        )
    first = client.get(url).json()
    assert first["n_trials"] == 30 and not first["cached"]
    assert first["params"][0]["param"] == "lr"
    assert client.get(url).json()["cached"] is True
    config = configs(1, seed=9)[0]
    client.post(
        f"/api/v1/studies/{study['id']}/trials",
        json={"params": config, "value": objective(config), "state": "completed"},
    )
    third = client.get(url).json()
    assert third["n_trials"] == 31 and not third["cached"]
    assert client.get(url, params={"method": "permutation"}).json()["method"] == "permutation"
    assert client.get("/api/v1/studies/999999/importance").status_code == 404


def test_the_chart_shows_the_numbers_of_the_endpoint(client):
    clear_cache()
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "imp chart",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": SPACE,
            "limits": {"max_trials": 50},
        },
    ).json()
    for config in configs(25, seed=3):
        client.post(
            f"/api/v1/studies/{study['id']}/trials",
            json={"params": config, "value": objective(config), "state": "completed"},
        )
    # The chart first: it fits and caches; then the endpoint answers from that cache.
    chart = client.get(f"/api/v1/studies/{study['id']}/plots/importance").json()
    endpoint = client.get(f"/api/v1/studies/{study['id']}/importance").json()
    assert endpoint["cached"] is True
    bars = chart["data"][0]
    shown = dict(zip(bars["y"], bars["x"], strict=True))
    assert shown == {p["param"]: p["importance"] for p in endpoint["params"]}
    assert "fANOVA" in chart["layout"]["xaxis"]["title"]["text"]
    # Fitted afresh (no cache), the two paths still agree: one implementation.
    clear_cache()
    again = client.get(f"/api/v1/studies/{study['id']}/importance").json()
    assert again["cached"] is False
    assert {p["param"]: p["importance"] for p in again["params"]} == shown


def test_large_studies_are_fitted_on_a_bounded_sample(monkeypatch):
    monkeypatch.setattr("app.importance.compute.MAX_ROWS", 20)
    found = configs(60)
    result = compute(SearchSpace.from_dict(SPACE), found, [objective(c) for c in found])
    assert result.n_trials == 60 and "sample of 20" in result.note
    assert list(result.params)[0] == "lr"
