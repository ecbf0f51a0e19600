"""Studies: create, list, read, update (state transitions) and delete; settings checked
on input (typos are 422s naming them) and read leniently once stored."""

from __future__ import annotations

from tests.api.helpers import API, ask, create_study, get_study, report, tell
from tests.fixtures.studies import SEED_SPACE, study_body


def test_create_returns_the_study_with_its_settings(client):
    study = create_study(client, name="resnet", tags={"team": "vision"})
    assert study["name"] == "resnet"
    assert study["state"] == "running"
    assert study["objective"] == {"metric": "loss", "direction": "minimize", "aggregate": "last"}
    assert set(study["space"]) == set(SEED_SPACE)
    assert study["strategy"]["name"] == "random" and study["seed"] == 7
    assert study["limits"]["max_trials"] == 10 and study["limits"]["max_parallel_trials"] == 4
    assert study["tags"] == {"team": "vision"}
    assert study["best_value"] is None and study["n_trials"] == 0
    assert set(study["trial_counts"]) >= {"running", "completed", "failed", "queued"}


def test_a_study_without_a_seed_gets_one(client):
    study = create_study(client, strategy={"name": "random"})
    assert isinstance(study["seed"], int) and study["strategy"]["seed"] == study["seed"]


def test_list_shows_best_value_and_trial_counts(client):
    first = create_study(client, name="a")
    second = create_study(client, name="b")
    trial = ask(client, first["id"])
    tell(client, trial["id"], value=0.5)
    ask(client, first["id"])

    listing = client.get(f"{API}/studies").json()
    assert listing["total"] == 2
    by_id = {s["id"]: s for s in listing["items"]}
    assert by_id[first["id"]]["best_value"] == 0.5
    assert by_id[first["id"]]["trial_counts"]["completed"] == 1
    assert by_id[first["id"]]["trial_counts"]["running"] == 1
    assert by_id[second["id"]]["trial_counts"]["completed"] == 0

    client.patch(f"{API}/studies/{second['id']}", json={"state": "paused"})
    paused = client.get(f"{API}/studies", params={"state": "paused"}).json()
    assert [s["id"] for s in paused["items"]] == [second["id"]] and paused["total"] == 1


def test_get_and_delete(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": 1, "value": 1.0}])
    assert client.delete(f"{API}/studies/{study['id']}").status_code == 204
    missing = client.get(f"{API}/studies/{study['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"study {study['id']} not found", "field": "study_id"}
    assert client.get(f"{API}/trials/{trial['id']}").status_code == 404
    assert client.delete(f"{API}/studies/{study['id']}").status_code == 404


def test_patch_name_tags_and_limits(client):
    study = create_study(client)
    updated = client.patch(
        f"{API}/studies/{study['id']}",
        json={"name": "renamed", "tags": {"k": 1}, "limits": {"max_trials": 3}},
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["name"] == "renamed" and body["tags"] == {"k": 1}
    assert body["limits"]["max_trials"] == 3


def test_pause_refuses_asks_until_resumed(client):
    study = create_study(client)
    running = ask(client, study["id"])
    paused = client.patch(f"{API}/studies/{study['id']}", json={"state": "paused"}).json()
    assert paused["state"] == "paused"

    refused = client.post(f"{API}/studies/{study['id']}/trials")
    assert refused.status_code == 409
    assert refused.json()["field"] == "state"
    assert "Retry-After" in refused.headers

    # Trials already running go on while the study is paused.
    assert (
        report(client, running["id"], [{"name": "loss", "step": 1, "value": 1.0}])["decision"]
        == "continue"
    )
    assert tell(client, running["id"], value=1.0)["state"] == "completed"

    resumed = client.patch(f"{API}/studies/{study['id']}", json={"state": "running"}).json()
    assert resumed["state"] == "running"
    assert ask(client, study["id"])["number"] == 1


def test_stop_cancels_running_trials_and_tells_their_next_report(client):
    study = create_study(client)
    first = ask(client, study["id"])
    second = ask(client, study["id"])
    stopped = client.patch(f"{API}/studies/{study['id']}", json={"state": "stopped"}).json()
    assert stopped["state"] == "stopped" and stopped["finished_at"] is not None
    assert stopped["trial_counts"]["cancelled"] == 2

    for trial in (first, second):
        assert client.get(f"{API}/trials/{trial['id']}").json()["state"] == "cancelled"
    decision = report(client, first["id"], [{"name": "loss", "step": 1, "value": 0.1}])
    assert decision["decision"] == "stop" and "stopped" in decision["reason"]
    heartbeat = client.post(f"{API}/trials/{second['id']}/heartbeat").json()
    assert heartbeat["decision"] == "stop"
    # Telling a cancelled trial keeps the server's verdict.
    assert tell(client, second["id"], value=0.1)["state"] == "cancelled"

    gone = client.post(f"{API}/studies/{study['id']}/trials")
    assert gone.status_code == 410 and gone.json()["field"] == "state"


def test_stopped_study_can_be_resumed(client):
    study = create_study(client)
    client.patch(f"{API}/studies/{study['id']}", json={"state": "stopped"})
    resumed = client.patch(f"{API}/studies/{study['id']}", json={"state": "running"}).json()
    assert resumed["state"] == "running" and resumed["finished_at"] is None
    assert ask(client, study["id"])["number"] == 0


def test_study_events_are_recorded_for_state_changes(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    client.patch(f"{API}/studies/{study['id']}", json={"state": "stopped"})
    events = client.get(f"{API}/trials/{trial['id']}/events").json()["items"]
    assert [e["to_state"] for e in events] == ["queued", "running", "cancelled"]
    assert events[-1]["actor"] == "api" and "stopped" in events[-1]["reason"]


def test_patch_rejects_unknown_state(client):
    study = create_study(client)
    response = client.patch(f"{API}/studies/{study['id']}", json={"state": "completed"})
    assert response.status_code == 422 and response.json()["field"] == "state"
    assert get_study(client, study["id"])["state"] == "running"


# Settings: typos refused on input, stored settings of older versions still read -------

FIDELITY = {"param": "epoch", "min": 1, "max": 27}

MISSPELLED = [
    ({"strategy": {"name": "random", "sed": 1}}, "strategy.sed"),
    ({"strategy": {"name": "grid", "grid_point": 3}}, "strategy.grid_point"),
    ({"strategy": {"name": "tpe", "n_startup_trial": 3}}, "strategy.n_startup_trial"),
    (
        {"strategy": {"name": "asha", "sampler": "tpe", "n_ei_candidate": 3}, "fidelity": FIDELITY},
        "strategy.n_ei_candidate",
    ),
    ({"limits": {"max_trail": 3}}, "limits.max_trail"),
    ({"execution": {"comand": ["python", "train.py"]}}, "execution.comand"),
    ({"fidelity": {"parm": "epoch", "min": 1, "max": 27}}, "fidelity.parm"),
    ({"early_stopping": {"rule": "median", "min_trial": 3}}, "early_stopping.min_trial"),
    ({"objective": {"metrc": "loss", "direction": "minimize"}}, "objective.metrc"),
]


def test_a_misspelled_setting_is_422_naming_it(client):
    wrong = []
    for overrides, field in MISSPELLED:
        response = client.post(f"{API}/studies", json=study_body(**overrides))
        if response.status_code != 422 or response.json().get("field") != field:
            wrong.append((field, response.status_code, response.json()))
    assert wrong == []
    assert client.get(f"{API}/studies").json()["total"] == 0


def test_a_misspelled_limit_in_a_patch_is_422_naming_it(client):
    study = create_study(client)
    response = client.patch(f"{API}/studies/{study['id']}", json={"limits": {"max_trail": 3}})
    assert response.status_code == 422 and response.json()["field"] == "limits.max_trail"
    assert get_study(client, study["id"])["limits"]["max_trials"] == 10


def test_options_out_of_range_are_422_naming_them(client):
    cases = [
        ({"strategy": {"name": "grid", "grid_points": 1001}}, "strategy.grid_points"),
        ({"strategy": {"name": "tpe", "n_ei_candidates": 0}}, "strategy.n_ei_candidates"),
        (
            {"strategy": {"name": "bohb", "random_fraction": 2}, "fidelity": FIDELITY},
            "strategy.random_fraction",
        ),
        ({"strategy": {"name": "asha", "mode": "halt"}, "fidelity": FIDELITY}, "strategy.mode"),
        ({"early_stopping": {"rule": "median", "warmup_steps": -1}}, "early_stopping.warmup_steps"),
    ]
    for overrides, field in cases:
        response = client.post(f"{API}/studies", json=study_body(**overrides))
        assert (response.status_code, response.json()["field"]) == (422, field), overrides


def test_a_large_grid_is_capped_by_its_size_not_refused(client):
    space = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(8)}
    study = create_study(
        client, space=space, strategy={"name": "grid", "grid_points": 1000, "seed": 1}
    )
    first = ask(client, study["id"])
    second = ask(client, study["id"])
    assert first["params"] != second["params"]
    tiny = create_study(
        client,
        space={"act": {"type": "categorical", "choices": ["a", "b"]}},
        strategy={"name": "grid"},
        limits={"max_trials": 10},
    )
    for _ in range(2):
        tell(client, ask(client, tiny["id"])["id"], value=1.0)
    done = get_study(client, tiny["id"])
    assert done["state"] == "completed" and "2 grid points" in done["state_reason"]


def test_settings_stored_by_an_older_version_still_read_and_run(client, database):
    from app.studies.models import Study

    study = create_study(client, strategy={"name": "grid", "grid_points": 2, "seed": 3})
    # Keys an older version accepted without checking, and one it no longer knows.
    with database.session() as session:
        row = session.get(Study, study["id"])
        assert row is not None
        row.strategy = {**row.strategy, "sed": 1}
        row.limits = {**row.limits, "old_limit": 5}
        row.early_stopping = {"rule": "median", "min_trial": 2}
    got = get_study(client, study["id"])
    assert got["limits"]["max_trials"] == 10 and "old_limit" not in got["limits"]
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": 1, "value": 1.0}])
    tell(client, trial["id"], value=0.5)
    assert client.get(f"{API}/studies").json()["total"] == 1


def test_an_export_with_keys_of_an_older_version_imports_and_runs(client):
    execution = {"command": ["python", "train.py"]}
    study = create_study(client, execution=execution, strategy={"name": "grid", "seed": 2})
    document = client.get(f"{API}/studies/{study['id']}/export").json()
    exported = document["study"]
    exported["execution"] = {**exported["execution"], "retired_option": True}
    exported["limits"] = {**exported["limits"], "old_limit": 1}
    exported["strategy"] = {**exported["strategy"], "sed": 1}
    response = client.post(f"{API}/studies/import", json=document)
    assert response.status_code in (200, 201), response.text
    imported = get_study(client, response.json()["id"])
    assert imported["execution"]["command"] == ["python", "train.py"]
    assert imported["limits"]["max_trials"] == 10 and "old_limit" not in imported["limits"]
    assert ask(client, imported["id"])["number"] == 0
    # The import still checks what keeps an execution safe.
    exported["execution"]["env"] = {"LD_PRELOAD": "/tmp/evil.so"}
    refused = client.post(f"{API}/studies/import", json=document)
    assert refused.status_code == 422 and refused.json()["field"] == "study.execution.env"
