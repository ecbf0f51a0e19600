from __future__ import annotations

import pytest

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-4, "scale": "log", "role": "learning_rate"},
    "per_device_batch": {"type": "int", "low": 8, "high": 32, "role": "per_device_batch_size"},
    "warmup_steps": {"type": "int", "low": 0, "high": 2000, "step": 100, "role": "warmup_steps"},
    "data_fraction": {"type": "fixed", "value": 0.01},
}


def small_study(client, values, **overrides):
    body = {
        "name": "1% of the data",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "strategy": {"name": "random", "seed": 3},
        "limits": {"max_trials": len(values), "max_parallel_trials": 4},
        "tags": {"world": {"nodes": 2, "gpus_per_node": 8}},
        **overrides,
    }
    study = client.post("/api/v1/studies", json=body).json()
    for value in values:
        trial = client.post(f"/api/v1/studies/{study['id']}/trials").json()
        client.post(f"/api/v1/trials/{trial['id']}/complete", json={"value": value})
    return client.get(f"/api/v1/studies/{study['id']}").json()


def trials_of(client, study_id):
    return client.get(f"/api/v1/studies/{study_id}/trials").json()["items"]


def test_promote_top_three_scaled_and_queued(client):
    parent = small_study(client, [0.9, 0.2, 0.5, 0.1, 0.7])
    assert parent["state"] == "completed"
    got = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={
            "top_k": 3,
            "to": {"nodes": 4, "gpus_per_node": 8},
            "rule": "linear",
            "overrides": {"data_fraction": 1.0},
        },
    )
    assert got.status_code == 201, got.text
    out = got.json()
    child = out["study"]
    assert child["parent_study_id"] == parent["id"] and child["state"] == "running"
    assert child["limits"]["max_trials"] == 3
    assert child["tags"]["world"] == {"nodes": 4, "gpus_per_node": 8}
    assert child["tags"]["lineage"][0]["kind"] == "promoted"
    assert child["space"]["data_fraction"] == {"type": "fixed", "value": 1.0}

    parents = {t["id"]: t for t in trials_of(client, parent["id"])}
    assert [parents[t["parent_trial_id"]]["value"] for t in out["trials"]] == [0.1, 0.2, 0.5]
    for promoted in out["trials"]:
        source = parents[promoted["parent_trial_id"]]["params"]
        assert promoted["params"]["lr"] == pytest.approx(source["lr"] * 2)
        assert promoted["params"]["per_device_batch"] == source["per_device_batch"]
        assert promoted["params"]["warmup_steps"] == round(source["warmup_steps"] / 2)
        assert promoted["params"]["data_fraction"] == 1.0
        assert promoted["steps"]

    queued = trials_of(client, child["id"])
    assert [t["state"] for t in queued] == ["queued"] * 3
    asked = client.post(f"/api/v1/studies/{child['id']}/trials").json()
    assert asked["params"] == out["trials"][0]["params"]  # the best runs first
    lineage = client.get(f"/api/v1/studies/{parent['id']}/lineage").json()
    assert [c["id"] for c in lineage["children"]] == [child["id"]]
    assert (
        client.get(f"/api/v1/studies/{child['id']}/lineage").json()["ancestors"][0]["id"]
        == parent["id"]
    )


def test_promote_needs_a_finished_trial_and_a_world(client):
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "empty",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": SPACE,
        },
    ).json()
    answer = client.post(
        f"/api/v1/studies/{study['id']}/promote", json={"to": {"nodes": 4, "gpus_per_node": 8}}
    )
    assert answer.status_code == 409 and answer.json()["field"] == "top_k"
    parent = small_study(client, [0.3], tags={})
    answer = client.post(
        f"/api/v1/studies/{parent['id']}/promote", json={"to": {"nodes": 4, "gpus_per_node": 8}}
    )
    assert answer.status_code == 422 and answer.json()["field"] == "from"


def test_promote_with_data_fraction_fidelity(client):
    space = {k: v for k, v in SPACE.items() if k != "data_fraction"}
    parent = small_study(
        client,
        [0.4, 0.3],
        space=space,
        fidelity={"param": "data_fraction", "min": 0.01, "max": 1.0, "reduction_factor": 10},
    )
    budgets = [t["budget"] for t in trials_of(client, parent["id"])]
    assert budgets == [1.0, 1.0] and all(isinstance(b, float) for b in budgets)
    out = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={
            "top_k": 2,
            "to": {"nodes": 4, "gpus_per_node": 8},
            "overrides": {"data_fraction": 1.0},
        },
    ).json()
    assert out["study"]["fidelity"] is None
    assert any("no fidelity" in n for n in out["notes"])


def test_warm_start_same_data_imports_observations(client):
    parent = small_study(client, [0.9, 0.2, 0.5])
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "warm",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": {**SPACE, "lr": {**SPACE["lr"], "high": 3e-5}},
            "limits": {"max_trials": 5},
        },
    ).json()
    out = client.post(
        f"/api/v1/studies/{study['id']}/warm_start",
        json={"parents": [parent["id"]], "mode": "same_data"},
    )
    assert out.status_code == 200, out.text
    body = out.json()
    fit = [t for t in trials_of(client, parent["id"]) if t["params"]["lr"] <= 3e-5]
    assert len(body["trials"]) == len(fit) and body["skipped"] == 3 - len(fit)
    got = body["study"]
    assert got["limits"]["max_trials"] == 5 + len(fit)
    assert got["parent_study_id"] == parent["id"] and got["state"] == "running"
    imported = trials_of(client, study["id"])
    assert all(
        t["source"] == "imported" and t["extra"]["imported_from"]["study_id"] == parent["id"]
        for t in imported
    )


def test_warm_start_transfer_queues_best_configs(client):
    parent = small_study(client, [0.9, 0.2, 0.5])
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "transfer",
            "objective": {"metric": "acc", "direction": "maximize"},
            "space": {
                "lr": {"type": "float", "low": 1e-5, "high": 3e-5, "role": "learning_rate"},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            },
        },
    ).json()
    out = client.post(
        f"/api/v1/studies/{study['id']}/warm_start",
        json={"parents": [parent["id"]], "mode": "transfer", "top_k": 2},
    ).json()
    assert len(out["trials"]) == 2
    assert all(
        t["params"]["dropout"] == 0.25 and 1e-5 <= t["params"]["lr"] <= 3e-5 for t in out["trials"]
    )
    assert [t["state"] for t in trials_of(client, study["id"])] == ["queued", "queued"]
    bad = client.post(f"/api/v1/studies/{study['id']}/warm_start", json={"parents": [parent["id"]]})
    assert bad.status_code == 422 and bad.json()["field"] == "mode"
    missing = client.post(f"/api/v1/studies/{study['id']}/warm_start", json={"parents": [999999]})
    assert missing.status_code == 422 and missing.json()["field"] == "parents.0"


def test_extend_in_place_and_narrowed(client):
    parent = small_study(client, [0.9, 0.2, 0.5])
    assert parent["state"] == "completed"
    more = client.post(f"/api/v1/studies/{parent['id']}/extend", json={"more_trials": 2}).json()
    assert more["study"]["id"] == parent["id"] and more["study"]["state"] == "running"
    assert more["study"]["limits"]["max_trials"] == 5
    trial = client.post(f"/api/v1/studies/{parent['id']}/trials").json()
    assert trial["number"] == 3

    narrow = {**SPACE, "lr": {**SPACE["lr"], "low": 1e-5, "high": 5e-5}}
    out = client.post(
        f"/api/v1/studies/{parent['id']}/extend", json={"more_trials": 4, "space": narrow}
    ).json()
    child = out["study"]
    assert child["id"] != parent["id"] and child["parent_study_id"] == parent["id"]
    fits = [
        t
        for t in trials_of(client, parent["id"])
        if t["state"] == "completed" and t["params"]["lr"] <= 5e-5
    ]
    assert len(out["trials"]) == len(fits)
    assert child["limits"]["max_trials"] == 4 + len(fits)


def test_promote_with_sqrt_rule_and_a_new_per_device_batch(client):
    space = {
        **SPACE,
        "per_device_batch": {
            "type": "categorical",
            "choices": [16, 22],
            "role": "per_device_batch_size",
        },
    }
    parent = small_study(client, [0.3, 0.2], space=space)
    out = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={
            "top_k": 2,
            "to": {"nodes": 4, "gpus_per_node": 8},
            "rule": "sqrt",
            "per_device_batch": 11,
        },
    ).json()
    parents = {t["id"]: t for t in trials_of(client, parent["id"])}
    for promoted in out["trials"]:
        source = parents[promoted["parent_trial_id"]]["params"]
        ratio = 11 / source["per_device_batch"] * 2
        assert promoted["params"]["per_device_batch"] == 11
        assert promoted["params"]["lr"] == pytest.approx(source["lr"] * ratio**0.5)
    assert 11 in out["study"]["space"]["per_device_batch"]["choices"]


def test_extend_keeps_a_paused_study_paused(client):
    study = client.post(
        "/api/v1/studies",
        json={
            "name": "paused",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": SPACE,
            "limits": {"max_trials": 2},
        },
    ).json()
    client.patch(f"/api/v1/studies/{study['id']}", json={"state": "paused"})
    out = client.post(f"/api/v1/studies/{study['id']}/extend", json={"more_trials": 3}).json()
    assert out["study"]["state"] == "paused" and out["study"]["limits"]["max_trials"] == 5
    assert out["notes"] == []


def test_invalid_follow_ups_answer_422(client):
    parent = small_study(client, [0.3, 0.2])
    bad = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={"to": {"nodes": 4, "gpus_per_node": 8}, "overrides": {"data_fraction": [1]}},
    )
    assert bad.status_code == 422
    bad = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={"to": {"nodes": 4, "gpus_per_node": 8}, "overrides": {"no such/name": 1}},
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("space")
    bad = client.post(
        f"/api/v1/studies/{parent['id']}/extend",
        json={"more_trials": 2, "space": {"lr": {"type": "float", "low": "x"}}},
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("space")


def test_extend_past_the_largest_study_is_422_naming_more_trials(client):
    parent = small_study(client, [0.3, 0.2])
    response = client.post(
        f"/api/v1/studies/{parent['id']}/extend",
        json={"more_trials": 999999, "name": "0", "space": None},
    )
    assert response.status_code == 422 and response.json()["field"] == "more_trials"
    assert "1000001" in response.json()["detail"]
    assert client.get(f"/api/v1/studies/{parent['id']}").json()["limits"]["max_trials"] == 2


def test_follow_ups_of_a_study_stored_by_an_older_version(client, database):
    from app.studies.models import Study

    fidelity = {"param": "data_fraction", "min": 0.01, "max": 1.0}
    space = {k: v for k, v in SPACE.items() if k != "data_fraction"}
    parent = small_study(
        client,
        [0.3, 0.2, 0.4],
        space=space,
        fidelity=fidelity,
        strategy={"name": "asha", "sampler": "random", "seed": 3},
    )
    # Keys an older version stored unchecked must not make the follow-up's body invalid.
    with database.session() as session:
        row = session.get(Study, parent["id"])
        assert row is not None
        row.strategy = {"name": "asha", "seed": 3, "sed": 1}
        row.limits = {**row.limits, "old_limit": 1}
        row.fidelity = {**row.fidelity, "old_key": 2}
    promoted = client.post(
        f"/api/v1/studies/{parent['id']}/promote",
        json={"to": {"nodes": 4, "gpus_per_node": 8}, "overrides": {"data_fraction": 1.0}},
    )
    assert promoted.status_code == 201, promoted.text
    # Its fidelity set outright, the asha study's child runs asha's sampler alone.
    assert promoted.json()["study"]["strategy"] == {"name": "random", "seed": 3}
    assert promoted.json()["study"]["fidelity"] is None
    extended = client.post(
        f"/api/v1/studies/{parent['id']}/extend", json={"more_trials": 2, "space": space}
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["study"]["strategy"]["name"] == "asha"
    more = client.post(f"/api/v1/studies/{parent['id']}/extend", json={"more_trials": 1})
    assert more.status_code == 200 and more.json()["study"]["limits"]["max_trials"] == 4
    # The extended study runs on the stored settings, old keys and all.
    trial = client.post(f"/api/v1/studies/{parent['id']}/trials")
    assert trial.status_code == 201, trial.text
    assert trial.json()["budget"] is not None
