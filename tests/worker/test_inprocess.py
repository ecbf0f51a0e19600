"""The embedded default: `tunelab serve` with SQLite and no broker runs trials in-process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.worker.conftest import (
    all_trials,
    assert_study_ran,
    thread_server,
    tiny_study,
    wait_for,
    wait_study_done,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp_path = tmp_path_factory.mktemp("inprocess")
    with thread_server(f"sqlite:///{tmp_path / 'tunelab.db'}", tmp_path, run_trials=True) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as client:
            yield client


def test_a_study_runs_to_completion_in_process(api):
    created = api.post("/studies", json=tiny_study())
    assert created.status_code == 201, created.text
    assert_study_ran(api, created.json()["id"])


def test_paused_trials_resume_from_their_checkpoint(api):
    body = tiny_study(
        name="pause",
        strategy={"name": "asha", "mode": "pause", "sampler": "random", "seed": 11},
        limits={"max_trials": 6, "max_parallel_trials": 2, "heartbeat_timeout_s": 5},
    )
    created = api.post("/studies", json=body)
    assert created.status_code == 201, created.text
    study = wait_study_done(api, created.json()["id"], 90)
    assert study["state"] == "completed", study["state_reason"]
    trials = all_trials(api, study["id"])
    resumed = [t for t in trials if t["resumes"] > 0]
    assert resumed, [(t["state"], t["budget"]) for t in trials]
    for trial in resumed:
        text = api.get(f"/trials/{trial['id']}/logs").json()["text"]
        # The same checkpoint folder came back: the script went on from where it paused.
        assert "resumed from epoch" in text
        steps = [p["step"] for p in api.get(f"/trials/{trial['id']}/metrics").json()["items"]]
        assert steps == list(range(1, int(max(steps)) + 1))
        assert text.count(" start\n") == trial["resumes"] + 1


def test_demo_starts_a_running_study(tmp_path):
    # What `tunelab serve --demo` configures: demo on, trials run in-process.
    with thread_server(
        f"sqlite:///{tmp_path / 'tunelab.db'}", tmp_path, demo=True, run_trials=True
    ) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as api:
            [study] = api.get("/studies").json()["items"]
            assert study["tags"] == {"demo": True} and study["state"] == "running"
            # The executor picked the study up: a trial of the real script started.
            wait_for(
                lambda: all_trials(api, study["id"]),
                30,
                interval_s=0.25,
                what="the demo's first trial",
            )
