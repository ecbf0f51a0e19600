"""Stopping `tunelab serve` ends its in-process trials at once and settles them."""

from __future__ import annotations

import sys

import httpx
import pytest

from tests.worker.conftest import TINY, pid_alive, thread_server, trial_pid, wait_for

pytestmark = pytest.mark.slow


def test_shutdown_ends_processes_and_requeues_their_trials(tmp_path):
    url_db = f"sqlite:///{tmp_path / 'tunelab.db'}"
    body = {
        "name": "long",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 1.0, "high": 2.0}},
        "limits": {"max_trials": 2, "max_parallel_trials": 1, "max_retries": 1},
        "execution": {
            "command": [sys.executable, TINY, "--epochs", "1000", "--sleep", "0.05"],
            "stop_grace_s": 1,
        },
    }
    with thread_server(url_db, tmp_path, run_trials=True) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as api:
            study = api.post("/studies", json=body).json()
            trial = wait_for(
                lambda: (t := api.get(f"/studies/{study['id']}/trials").json()["items"]) and t[0],
                30,
            )
            pid = wait_for(lambda: trial_pid(api, trial["id"]), 30)
    assert not pid_alive(pid)
    with thread_server(url_db, tmp_path, run_trials=False) as url:
        again = httpx.get(f"{url}/api/v1/trials/{trial['id']}").json()
    assert again["state"] == "queued" and again["retries"] == 1
