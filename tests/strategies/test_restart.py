"""Scheduler state lives in the database: a restarted server carries on where it stopped."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.services import live_server
from tests.fixtures.studies import study_body
from tests.strategies.test_api import SPACE

pytestmark = pytest.mark.slow


def test_paused_trials_are_promoted_by_a_restarted_server(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'tunelab.db'}"
    body = study_body(
        space=SPACE,
        strategy={
            "name": "hyperband",
            "mode": "pause",
            "sampler": "tpe",
            "seed": 5,
            "n_startup_trials": 2,
        },
        fidelity={"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3},
        limits={"max_trials": 6, "max_parallel_trials": 6},
    )
    with live_server(database_url, tmp_path) as url:
        api = f"{url}/api/v1"
        study = httpx.post(f"{api}/studies", json=body).json()
        trials = [httpx.post(f"{api}/studies/{study['id']}/trials").json() for _ in range(6)]
        for number, trial in enumerate(trials):
            budget = trial["budget"]
            points = [{"name": "loss", "step": budget, "value": 1.0 + number}]
            decision = httpx.post(f"{api}/trials/{trial['id']}/metrics", json=points).json()
            if decision["decision"] == "continue":  # a trial of the full-budget bracket
                httpx.post(f"{api}/trials/{trial['id']}/complete", json={})
        before = httpx.get(f"{api}/studies/{study['id']}/trials").json()["items"]

    paused = [t for t in before if t["state"] == "paused"]
    assert paused, before
    with live_server(database_url, tmp_path) as url:
        api = f"{url}/api/v1"
        after = httpx.get(f"{api}/studies/{study['id']}/trials").json()["items"]
        assert [(t["id"], t["rung"], t["extra"]) for t in after] == [
            (t["id"], t["rung"], t["extra"]) for t in before
        ]
        resumed = httpx.post(f"{api}/studies/{study['id']}/trials").json()
        assert resumed["resume"] is True
        # The best paused trial of the lowest bracket's rung is promoted first.
        best = min(paused, key=lambda t: (-t["rung"], t["value"]))
        assert resumed["id"] == best["id"]
        assert resumed["budget"] > best["budget"]
