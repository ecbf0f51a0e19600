from __future__ import annotations

import math

from tests.fixtures.studies import study_body


def test_ask_report_tell_round_trip(client):
    study = client.post("/api/v1/studies", json=study_body()).json()
    trial = client.post(f"/api/v1/studies/{study['id']}/trials").json()
    assert trial["number"] == 0 and trial["state"] == "running"
    decision = client.post(
        f"/api/v1/trials/{trial['id']}/metrics",
        json=[
            {"name": "loss", "step": 1, "value": 0.5},
            {"name": "loss", "step": 2, "value": "NaN"},
            {"name": "loss", "step": 3, "value": 0.25},
        ],
    ).json()
    assert decision == {"decision": "continue", "reason": ""}
    done = client.post(f"/api/v1/trials/{trial['id']}/complete", json={}).json()
    assert done["state"] == "completed" and done["value"] == 0.25
    points = client.get(f"/api/v1/trials/{trial['id']}/metrics").json()["items"]
    assert [p["step"] for p in points] == [1, 2, 3]
    assert points[1]["value"] == "NaN"
    got = client.get(f"/api/v1/studies/{study['id']}").json()
    assert got["best_value"] == 0.25 and got["trial_counts"]["completed"] == 1
    assert not math.isnan(got["best_value"])
