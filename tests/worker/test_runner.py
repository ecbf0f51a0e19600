"""The runner against a real API server and real trial processes."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.worker.conftest import LOSS_REGEX, TINY, pid_alive, thread_server, trial_pid, wait_for
from tunelab.transport import TunelabError
from worker.api import ApiClient
from worker.runner import RunnerConfig, Slot, TrialOutcome, run_next

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("runner")
    # The test drives the runner itself: the server must not start trials of its own.
    with thread_server(f"sqlite:///{data / 'tunelab.db'}", data, run_trials=False) as url:
        yield url


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=10) as client:
        yield client


def _study(api: httpx.Client, *args: str, **execution: object) -> int:
    body = {
        "name": "runner",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.5, "high": 5.0}},
        "limits": {"max_trials": 5, "max_parallel_trials": 2},
        "execution": {
            "command": [sys.executable, TINY, *args],
            "metric_definitions": [{"name": "loss", "regex": LOSS_REGEX}],
            "stop_grace_s": 1,
            **execution,
        },
    }
    response = api.post("/studies", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _run(server: str, study_id: int, tmp_path: Path) -> TrialOutcome:
    with ApiClient(server) as client:
        outcome = run_next(
            client, study_id, Slot("test:0"), RunnerConfig(api_url=server, checkpoint_root=tmp_path)
        )
    assert outcome is not None
    return outcome


def _run_in_thread(
    server: str, study_id: int, tmp_path: Path
) -> tuple[threading.Thread, list[TrialOutcome]]:
    outcomes: list[TrialOutcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(_run(server, study_id, tmp_path)), daemon=True
    )
    thread.start()
    return thread, outcomes


def test_metrics_parsed_from_stdout_equal_what_the_script_printed(server, api, tmp_path):
    study_id = _study(api, "--epochs", "30", "--sleep", "0")
    outcome = _run(server, study_id, tmp_path)
    assert outcome.state == "completed" and outcome.returncode == 0
    log = api.get(f"/trials/{outcome.trial_id}/logs").json()
    assert log["complete"] and "warming up\n" in log["text"]  # stderr is kept too
    printed = [(float(m["step"]), float(m["value"])) for m in re.finditer(LOSS_REGEX, log["text"])]
    assert len(printed) == 30
    stored = [
        (p["step"], p["value"])
        for p in api.get(f"/trials/{outcome.trial_id}/metrics").json()["items"]
    ]
    assert stored == printed
    trial = api.get(f"/trials/{outcome.trial_id}").json()
    assert trial["value"] == printed[-1][1]
    # Each run of a trial gets the same checkpoint folder, named by study and trial number.
    assert (tmp_path / f"study-{study_id}" / f"trial-{trial['number']}").is_dir()


def test_a_failing_script_fails_its_trial_with_the_tail_of_its_output(server, api, tmp_path):
    study_id = _study(api, "--fail", "true", "--epochs", "1", "--sleep", "0")
    outcome = _run(server, study_id, tmp_path)
    assert outcome.state == "failed"
    trial = api.get(f"/trials/{outcome.trial_id}").json()
    assert "exit code 3" in trial["error"] and "boom" in trial["error"]


def test_a_retried_trials_output_continues_after_the_first_runs(server, api, tmp_path):
    study_id = _study(api, "--fail", "true", "--epochs", "1", "--sleep", "0", max_retries=1)
    first = _run(server, study_id, tmp_path)
    assert api.get(f"/trials/{first.trial_id}").json()["state"] == "queued"
    with ApiClient(server) as client:
        end = client.log_end(first.trial_id)
        stored = api.get(f"/trials/{first.trial_id}/logs").json()["text"]
        assert end == len(stored.encode()) > 0
        second = _run(server, study_id, tmp_path)
        assert second.trial_id == first.trial_id and second.state == "failed"
        text = api.get(f"/trials/{first.trial_id}/logs").json()["text"]
        # The second run's output follows the first's: nothing overwritten, no gap.
        assert text.startswith(stored) and text.count(" start\n") == 2
        assert client.log_end(first.trial_id) == len(text.encode())
        with pytest.raises(TunelabError) as error:
            client.log_end(10**9)
        assert error.value.status_code == 404


def test_a_missing_command_fails_the_trial(server, api, tmp_path):
    response = api.post(
        "/studies",
        json={
            "name": "missing",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.5, "high": 5.0}},
            "execution": {"command": ["/nonexistent/tunelab-no-such-binary"]},
        },
    )
    outcome = _run(server, response.json()["id"], tmp_path)
    assert outcome.state == "failed" and "could not start" in outcome.reason


def test_cancel_reaches_the_process_within_two_seconds(server, api, tmp_path):
    study_id = _study(api, "--epochs", "1000", "--sleep", "0.05")
    thread, outcomes = _run_in_thread(server, study_id, tmp_path)
    trial = wait_for(
        lambda: (t := api.get(f"/studies/{study_id}/trials").json()["items"]) and t[0], 30
    )
    pid = wait_for(lambda: trial_pid(api, trial["id"]), 30, what="the script's pid in its log")
    cancelled_at = time.monotonic()
    assert api.post(f"/trials/{trial['id']}/cancel").status_code == 200
    wait_for(lambda: not pid_alive(pid), 2.0, interval_s=0.02, what="the process to end")
    assert time.monotonic() - cancelled_at < 2.0
    thread.join(10)
    assert outcomes[0].state == "cancelled"
    assert api.get(f"/trials/{trial['id']}").json()["state"] == "cancelled"


def test_stopping_the_study_reaches_the_process_within_two_seconds(server, api, tmp_path):
    study_id = _study(api, "--epochs", "1000", "--sleep", "0.05")
    thread, outcomes = _run_in_thread(server, study_id, tmp_path)
    trial = wait_for(
        lambda: (t := api.get(f"/studies/{study_id}/trials").json()["items"]) and t[0], 30
    )
    pid = wait_for(lambda: trial_pid(api, trial["id"]), 30)
    stopped_at = time.monotonic()
    assert api.patch(f"/studies/{study_id}", json={"state": "stopped"}).status_code == 200
    wait_for(lambda: not pid_alive(pid), 2.0, interval_s=0.02, what="the process to end")
    assert time.monotonic() - stopped_at < 2.0
    thread.join(10)


def test_timeout_ends_and_fails_the_trial(server, api, tmp_path):
    study_id = _study(api, "--epochs", "1000", "--sleep", "0.05", timeout_s=1.0)
    outcome = _run(server, study_id, tmp_path)
    assert outcome.state == "failed" and "timed out" in outcome.reason
