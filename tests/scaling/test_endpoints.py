from __future__ import annotations

import pytest

from tests.fixtures.studies import study_body

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-4, "scale": "log", "role": "learning_rate"},
    "per_device_batch": {"type": "int", "low": 8, "high": 32, "role": "per_device_batch_size"},
    "warmup_steps": {"type": "int", "low": 0, "high": 2000, "role": "warmup_steps"},
}


def _trial(client, space, params):
    study = client.post("/api/v1/studies", json=study_body(space=space)).json()
    return client.post(f"/api/v1/studies/{study['id']}/trials", json={"params": params}).json()


def test_scale_trial_with_the_chapter_numbers(client):
    trial = _trial(client, SPACE, {"lr": 5e-5, "per_device_batch": 22, "warmup_steps": 1000})
    body = {
        "from": {"nodes": 2, "gpus_per_node": 8},
        "to": {"nodes": 4, "gpus_per_node": 8},
        "rule": "linear",
    }
    got = client.post(f"/api/v1/trials/{trial['id']}/scale", json=body)
    assert got.status_code == 200, got.text
    out = got.json()
    assert out["from"]["world_size"] == 16 and out["to"]["world_size"] == 32
    assert out["params"]["lr"] == pytest.approx(1e-4)
    assert out["params"]["per_device_batch"] == 22
    assert out["params"]["warmup_steps"] == 500
    assert out["roles_inferred"] is False
    assert any("5e-05 x 2 = 0.0001" in s["formula"] for s in out["steps"])
    assert not any("outside this study's range" in n for n in out["notes"])  # 1e-4 is the edge
    wider = client.post(
        f"/api/v1/trials/{trial['id']}/scale", json={**body, "to": {"nodes": 8, "gpus_per_node": 8}}
    ).json()
    assert wider["params"]["lr"] == pytest.approx(2e-4)
    assert any("outside this study's range" in n for n in wider["notes"])
    sqrt = client.post(f"/api/v1/trials/{trial['id']}/scale", json={**body, "rule": "sqrt"}).json()
    assert sqrt["params"]["lr"] == pytest.approx(7.0710678e-5)


def test_scale_falls_back_to_names_and_says_so(client):
    trial = _trial(
        client,
        {
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3},
            "batch_size": {"type": "int", "low": 8, "high": 64},
        },
        {"learning_rate": 5e-5, "batch_size": 22},
    )
    body = {
        "from": {"nodes": 2, "gpus_per_node": 8},
        "to": {"nodes": 4, "gpus_per_node": 8},
        "rule": "linear",
        "per_device_batch": 11,
    }
    out = client.post(f"/api/v1/trials/{trial['id']}/scale", json=body).json()
    assert out["roles_inferred"] is True
    assert out["params"] == {"learning_rate": pytest.approx(5e-5), "batch_size": 11}
    assert any("from its name" in n for n in out["notes"])


def test_scale_errors(client):
    trial = _trial(client, SPACE, {"lr": 5e-5, "per_device_batch": 22, "warmup_steps": 1000})
    missing = client.post(
        f"/api/v1/trials/{trial['id']}/scale", json={"to": {"nodes": 4, "gpus_per_node": 8}}
    )
    assert missing.status_code == 422 and missing.json()["field"] == "from"
    bad_rule = client.post(
        f"/api/v1/trials/{trial['id']}/scale",
        json={
            "from": {"nodes": 2, "gpus_per_node": 8},
            "to": {"nodes": 4, "gpus_per_node": 8},
            "rule": "cubic",
        },
    )
    assert bad_rule.status_code == 422 and bad_rule.json()["field"] == "rule"
    assert (
        client.post(
            "/api/v1/trials/999999/scale",
            json={"from": {"nodes": 2, "gpus_per_node": 8}, "to": {"nodes": 4, "gpus_per_node": 8}},
        ).status_code
        == 404
    )


def test_scale_takes_the_world_from_the_study_tags(client):
    body = study_body(space=SPACE, tags={"world": {"nodes": 2, "gpus_per_node": 8}})
    study = client.post("/api/v1/studies", json=body).json()
    trial = client.post(
        f"/api/v1/studies/{study['id']}/trials",
        json={"params": {"lr": 5e-5, "per_device_batch": 22, "warmup_steps": 100}},
    ).json()
    out = client.post(
        f"/api/v1/trials/{trial['id']}/scale", json={"to": {"nodes": 4, "gpus_per_node": 8}}
    ).json()
    assert out["params"]["lr"] == pytest.approx(1e-4)


def test_scale_any_config(client):
    out = client.post(
        "/api/v1/scale",
        json={
            "params": {"lr": 5e-5, "per_device_batch": 22},
            "roles": {"lr": "learning_rate", "per_device_batch": "per_device_batch_size"},
            "from": {"nodes": 2, "gpus_per_node": 8},
            "to": {"nodes": 4, "gpus_per_node": 8},
        },
    )
    assert out.status_code == 200, out.text
    assert out.json()["params"]["lr"] == pytest.approx(1e-4)
