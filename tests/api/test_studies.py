"""Studies: create, list, read, update (state transitions) and delete."""

from __future__ import annotations

from tests.api.helpers import API, ask, create_study, get_study, report, tell
from tests.fixtures.studies import SEED_SPACE


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
