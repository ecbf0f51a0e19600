"""A fraction of the data as the fidelity: floats from 0.01 to 1.0 all the way through."""

from __future__ import annotations

import pytest

from app.engine.base import Fidelity


def test_rungs_of_a_data_fraction():
    assert Fidelity("data_fraction", 0.01, 1.0, 10).rungs() == pytest.approx([0.01, 0.1, 1.0])
    assert Fidelity("data_fraction", 0.01, 1.0, 3).rungs() == pytest.approx(
        [0.01, 0.03, 0.09, 0.27, 0.81, 1.0]
    )


def test_study_with_data_fraction_fidelity(client):
    body = {
        "name": "fraction",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "scale": "log"}},
        "fidelity": {"param": "data_fraction", "min": 0.01, "max": 1.0, "reduction_factor": 10},
        "limits": {"max_trials": 3, "max_budget": 2.5},
    }
    created = client.post("/api/v1/studies", json=body)
    assert created.status_code == 201, created.text
    study = created.json()
    assert study["fidelity"] == {
        "param": "data_fraction",
        "min": 0.01,
        "max": 1.0,
        "reduction_factor": 10.0,
    }
    trial = client.post(f"/api/v1/studies/{study['id']}/trials").json()
    assert trial["budget"] == 1.0
    client.post(
        f"/api/v1/trials/{trial['id']}/metrics",
        json=[
            {"name": "loss", "step": 0.01, "value": 0.9},
            {"name": "loss", "step": 0.1, "value": 0.5},
        ],
    )
    points = client.get(f"/api/v1/trials/{trial['id']}/metrics").json()["items"]
    assert [p["step"] for p in points] == [0.01, 0.1]
    assert client.get(f"/api/v1/studies/{study['id']}").json()["budget_used"] == 1.0
    bad = client.post(
        "/api/v1/studies",
        json={**body, "fidelity": {"param": "data_fraction", "min": 1.0, "max": 0.01}},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "fidelity.min"


@pytest.mark.parametrize("strategy", ["asha", "hyperband"])
def test_multi_fidelity_strategies_on_data_fractions(client, strategy):
    """Steps are the share of the data seen so far; rungs at 1%, 10% and all of it."""
    import math

    body = {
        "name": f"{strategy} on data fractions",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "scale": "log"}},
        "strategy": {"name": strategy, "seed": 11},
        "fidelity": {"param": "data_fraction", "min": 0.01, "max": 1.0, "reduction_factor": 10},
        "limits": {"max_trials": 12, "max_parallel_trials": 1},
    }
    study = client.post("/api/v1/studies", json=body)
    assert study.status_code == 201, study.text
    study_id = study.json()["id"]
    decisions = []
    for _ in range(12):
        trial = client.post(f"/api/v1/studies/{study_id}/trials").json()
        assert isinstance(trial["budget"], float) and trial["budget"] == 1.0
        quality = abs(math.log10(trial["params"]["lr"]) + 2.5)
        decision = "continue"
        for fraction in (0.01, 0.03, 0.1, 0.3, 1.0):
            loss = quality + 0.05 / fraction
            decision = client.post(
                f"/api/v1/trials/{trial['id']}/metrics",
                json=[{"name": "loss", "step": fraction, "value": loss}],
            ).json()["decision"]
            if decision != "continue":
                break
        decisions.append(decision)
        if decision == "continue":
            done = client.post(f"/api/v1/trials/{trial['id']}/complete", json={})
            assert done.json()["state"] == "completed"
    assert "stop" in decisions and "continue" in decisions
    trials = client.get(f"/api/v1/studies/{study_id}/trials").json()["items"]
    stopped = [t for t in trials if t["state"] == "stopped"]
    assert stopped and all(t["last_step"] < 1.0 for t in stopped)
    rungs = {float(k) for t in trials for k in (t["extra"].get("rungs") or {})}
    assert rungs <= {0.0, 1.0}  # rung indexes 0 (1%) and 1 (10%)
