"""A lost worker's trial is recovered at the next sweep; a superseded run is fenced off."""

from __future__ import annotations

import time
import uuid

import pytest

from app.executor.liveness import Beacon, LivenessWatch
from app.trials.fencing import ATTEMPT_HEADER
from tests.fixtures.services import redis_available
from tests.fixtures.studies import study_body

REDIS = "redis://127.0.0.1:6379/7"


def _running_trial(client, worker: str, max_retries: int = 1) -> dict:
    body = study_body(limits={"max_trials": 5, "max_retries": max_retries})
    study = client.post("/api/v1/studies", json=body).json()
    asked = client.post(f"/api/v1/studies/{study['id']}/trials", json={"worker": worker})
    assert asked.status_code == 201, asked.text
    return asked.json()


def test_reports_of_a_requeued_run_are_refused_naming_the_attempt(client):
    trial = _running_trial(client, "w:0")
    url = f"/api/v1/trials/{trial['id']}"
    old = {ATTEMPT_HEADER: str(trial["retries"])}
    point = [{"name": "loss", "step": 1, "value": 0.5}]
    assert client.post(f"{url}/metrics", json=point, headers=old).status_code == 200
    # The run fails and the trial goes back to the queue (retries 0 -> 1).
    failed = client.post(f"{url}/complete", json={"state": "failed", "error": "lost"}, headers=old)
    assert failed.json()["state"] == "queued"
    for path, body in (
        ("metrics", [{"name": "loss", "step": 2, "value": 0.4}]),
        ("heartbeat", None),
        ("logs", {"offset": 0, "text": "late\n"}),
        ("complete", {"state": "failed", "error": "late"}),
    ):
        answer = client.post(f"{url}/{path}", json=body, headers=old)
        assert answer.status_code == 409, (path, answer.text)
        assert answer.json()["field"] == "attempt"
        assert "attempt 0 of trial" in answer.json()["detail"]
    assert client.get(f"{url}").json()["state"] == "queued"  # the late failure changed nothing
    steps = [p["step"] for p in client.get(f"{url}/metrics").json()["items"]]
    assert steps == [1]
    # The next run's attempt is accepted; a request without the header is not checked.
    assert client.post(f"{url}/heartbeat", headers={ATTEMPT_HEADER: "1"}).status_code == 200
    assert client.post(f"{url}/heartbeat").status_code == 200
    bad = client.post(f"{url}/heartbeat", headers={ATTEMPT_HEADER: "x"})
    assert bad.status_code == 422 and bad.json()["field"] == "attempt"


@pytest.mark.redis
def test_a_worker_whose_key_expired_has_its_trial_requeued(client, database):
    if not redis_available():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    slot = f"host-{uuid.uuid4().hex[:8]}:0"
    beacon = Beacon(REDIS, [slot], beat_s=0.1, expiry_s=0.5).start()
    watch = LivenessWatch(REDIS)
    try:
        trial = _running_trial(client, slot)
        other = _running_trial(client, "sdk-script")  # never beaten: left to the heartbeat
        with database.session() as session:
            assert watch.sweep(session) == 0
        beacon.stopped.set()  # the worker dies: no more beats, the key expires
        beacon.thread.join()
        time.sleep(0.7)
        with database.session() as session:
            assert watch.sweep(session) == 1
        seen = client.get(f"/api/v1/trials/{trial['id']}").json()
        assert seen["state"] == "queued" and seen["retries"] == 1
        assert "was lost" in (seen["error"] or "")
        assert client.get(f"/api/v1/trials/{other['id']}").json()["state"] == "running"
    finally:
        beacon.stop()
        watch.close()
