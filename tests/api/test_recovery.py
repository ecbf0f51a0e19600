"""The sweeper: a running trial without heartbeat is failed, or re-queued while retries remain."""

from __future__ import annotations

import time

import pytest

from tests.api.helpers import API, ask, create_study, get_study, tell


def _wait_for_state(client, trial_id: int, state: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        trial = client.get(f"{API}/trials/{trial_id}").json()
        if trial["state"] == state:
            return trial
        time.sleep(0.1)
    raise AssertionError(f"trial {trial_id} is {trial['state']}, not {state}")


@pytest.mark.slow
def test_silent_trial_is_requeued_then_failed(client):
    study = create_study(
        client,
        limits={
            "max_trials": 5,
            "max_parallel_trials": 1,
            "heartbeat_timeout_s": 0.5,
            "max_retries": 1,
        },
    )
    trial = ask(client, study["id"])
    queued = _wait_for_state(client, trial["id"], "queued")
    assert queued["retries"] == 1 and queued["started_at"] is None

    again = ask(client, study["id"])
    assert again["id"] == trial["id"] and again["params"] == trial["params"]
    assert again["number"] == trial["number"] and again["state"] == "running"

    failed = _wait_for_state(client, trial["id"], "failed")
    assert "no heartbeat" in failed["error"]
    events = client.get(f"{API}/trials/{trial['id']}/events").json()["items"]
    reasons = [e["reason"] for e in events if e["actor"] == "tunelab"]
    assert len(reasons) == 2 and all("no heartbeat" in r for r in reasons)
    assert [e["kind"] for e in events if e["actor"] == "tunelab"] == ["retried", "state"]
    # The slot is free again and the next trial is a new one.
    assert ask(client, study["id"])["number"] == 1


@pytest.mark.slow
def test_heartbeats_and_reports_keep_a_trial_alive(client):
    study = create_study(
        client, limits={"max_trials": 5, "max_parallel_trials": 2, "heartbeat_timeout_s": 3}
    )
    beating = ask(client, study["id"])
    reporting = ask(client, study["id"])
    for step in range(12):
        assert (
            client.post(f"{API}/trials/{beating['id']}/heartbeat").json()["decision"] == "continue"
        )
        client.post(
            f"{API}/trials/{reporting['id']}/metrics",
            json=[{"name": "loss", "step": step, "value": 1.0}],
        )
        time.sleep(0.2)
    for trial in (beating, reporting):
        assert client.get(f"{API}/trials/{trial['id']}").json()["state"] == "running"
    tell(client, beating["id"], value=1.0)
    failed = _wait_for_state(client, reporting["id"], "failed")
    assert failed["retries"] == 0
    assert get_study(client, study["id"])["trial_counts"]["failed"] == 1


@pytest.mark.slow
def test_sweeper_ends_a_study_out_of_time(client):
    study = create_study(client, limits={"max_trials": 5, "max_runtime_s": 3})
    trial = ask(client, study["id"])
    deadline = time.monotonic() + 20
    while get_study(client, study["id"])["state"] == "running":
        assert time.monotonic() < deadline, "the study did not end"
        time.sleep(0.1)
    got = get_study(client, study["id"])
    assert got["state"] == "completed" and "max_runtime_s" in got["state_reason"]
    assert client.get(f"{API}/trials/{trial['id']}").json()["state"] == "cancelled"
