"""Conditional parameters over HTTP: invalid conditions are 422s naming the field, asked
trials carry only active parameters, a client's config with an inactive parameter is
refused, and the charts and importance show inactive values instead of dropping trials."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import API, ask, create_study, tell
from tests.fixtures.studies import study_body

SPACE: dict[str, Any] = {
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "condition": {"optimizer": ["sgd"]}},
    "nesterov": {
        "type": "categorical",
        "choices": [True, False],
        "condition": {"optimizer": ["sgd"]},
    },
    "dampening": {"type": "float", "low": 0.0, "high": 0.5, "condition": {"nesterov": [False]}},
    "beta1": {"type": "float", "low": 0.8, "high": 0.99, "condition": {"optimizer": ["adam"]}},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
}


def _study(client, **overrides: Any) -> dict[str, Any]:
    limits = {"max_trials": 100, "max_parallel_trials": 100}
    return create_study(client, space=SPACE, limits=limits, **overrides)


def test_conditions_round_trip_through_the_study(client):
    study = _study(client)
    assert study["space"]["momentum"]["condition"] == {"optimizer": ["sgd"]}
    assert study["space"]["dampening"]["condition"] == {"nesterov": [False]}
    again = client.get(f"{API}/studies/{study['id']}").json()
    assert again["space"] == study["space"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"momentum": {"condition": {"optimiser": ["sgd"]}}}, "space.momentum.condition.optimiser"),
        ({"momentum": {"condition": {"optimizer": ["rmsprop"]}}}, "space.momentum.condition.optimizer.0"),
        ({"momentum": {"condition": {"momentum": [0.9]}}}, "space.momentum.condition.momentum"),
        ({"optimizer": {"condition": {"nesterov": [True]}}}, "space.optimizer.condition"),
        ({"momentum": {"condition": {"lr": [0.01]}}}, "space.momentum.condition.lr"),
        ({"momentum": {"condition": {"optimizer": []}}}, "space.momentum.condition.optimizer"),
        ({"momentum": {"condition": "optimizer"}}, "space.momentum.condition"),
    ],
)  # fmt: skip
def test_invalid_conditions_are_422_naming_the_field(client, change, field):
    space = {name: dict(spec) for name, spec in SPACE.items()}
    for name, fields in change.items():
        space[name].update(fields)
    response = client.post(f"{API}/studies", json=study_body(space=space))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()


@pytest.mark.parametrize("strategy", ["random", "sobol", "tpe"])
def test_asked_trials_carry_only_active_parameters(client, strategy):
    study = _study(client, strategy={"name": strategy, "seed": 3})
    branches = set()
    for k in range(24):
        trial = ask(client, study["id"])
        params = trial["params"]
        if params["optimizer"] == "sgd":
            assert "beta1" not in params and "momentum" in params
            assert ("dampening" in params) == (params["nesterov"] is False)
        else:
            assert set(params) == {"optimizer", "beta1", "lr"}
        branches.add((params["optimizer"], params.get("nesterov")))
        tell(client, trial["id"], value=float(k % 5))
    assert len(branches) >= 2


def test_grid_hands_out_each_config_of_the_tree_once(client):
    small = {
        "optimizer": SPACE["optimizer"],
        "nesterov": SPACE["nesterov"],
        "beta1": {"type": "categorical", "choices": [0.9, 0.99], "condition": {"optimizer": ["adam"]}},
    }  # fmt: skip
    study = create_study(
        client,
        space=small,
        strategy={"name": "grid", "seed": 1},
        limits={"max_trials": 50, "max_parallel_trials": 50},
    )
    seen = []
    while True:
        response = client.post(f"{API}/studies/{study['id']}/trials")
        if response.status_code != 201:
            break
        seen.append(tuple(sorted(response.json()["params"].items(), key=str)))
    # sgd x (True, False) + adam x (0.9, 0.99): 4 configs, none padded by inactive values.
    assert len(seen) == len(set(seen)) == 4


def test_a_client_config_with_an_inactive_parameter_is_422(client):
    study = _study(client)
    url = f"{API}/studies/{study['id']}/trials"
    adam = {"optimizer": "adam", "beta1": 0.9, "lr": 1e-3}
    response = client.post(url, json={"params": {**adam, "momentum": 0.9}})
    assert response.status_code == 422 and response.json()["field"] == "params.momentum"
    assert "inactive" in response.json()["detail"]
    response = client.post(url, json={"params": {"optimizer": "sgd", "lr": 1e-3}})
    assert response.status_code == 422 and response.json()["field"] == "params.momentum"
    # Queued and imported results are checked the same way.
    queued = client.post(url, json={"params": {**adam, "dampening": 0.1}, "queue": True})
    assert queued.status_code == 422 and queued.json()["field"] == "params.dampening"
    imported = client.post(url, json={"params": {**adam, "nesterov": True}, "value": 1.0})
    assert imported.status_code == 422 and imported.json()["field"] == "params.nesterov"
    accepted = client.post(url, json={"params": adam})
    assert accepted.status_code == 201 and accepted.json()["params"] == adam


def _finished_study(client, n: int = 16) -> int:
    study = _study(client, strategy={"name": "random", "seed": 5})
    for k in range(n):
        trial = ask(client, study["id"])
        loss = (0.2 if trial["params"]["optimizer"] == "adam" else 0.5) + 0.01 * k
        tell(client, trial["id"], value=loss)
    return study["id"]


def test_charts_show_inactive_values_instead_of_dropping_trials(client):
    study_id = _finished_study(client)
    slices = client.get(f"{API}/studies/{study_id}/plots/slices").json()
    texts = [a.get("text") for a in slices["layout"]["annotations"]]
    assert "inactive" in texts
    parallel = client.get(f"{API}/studies/{study_id}/plots/parallel").json()
    texts = [a.get("text") for a in parallel["layout"]["annotations"]]
    assert "inactive" in texts
    # Every trial is a line (each band trace holds its trials' polylines, NaN-separated):
    # none is left out for missing a parameter.
    brush = client.get(f"{API}/studies/{study_id}/plots/parallel", params={"brush": "true"})
    dimensions = brush.json()["data"][0]["dimensions"]
    momentum = next(d for d in dimensions if d["label"] == "momentum")
    assert "inactive" in momentum["ticktext"]
    nesterov = next(d for d in dimensions if d["label"] == "nesterov")
    assert "inactive" in nesterov["ticktext"]


def test_importance_counts_every_trial_of_every_branch(client):
    study_id = _finished_study(client)
    for method in ("fanova", "permutation"):
        found = client.get(f"{API}/studies/{study_id}/importance", params={"method": method})
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["n_trials"] == 16
        shares = {p["param"]: p["importance"] for p in body["params"]}
        assert {"optimizer", "beta1", "momentum"} <= set(shares)
        assert abs(sum(shares.values()) - 1.0) < 1e-6
