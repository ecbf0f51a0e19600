"""The spool outlives its worker process: reports a worker spooled while the API was away,
then was killed before it could deliver them, are delivered by the next worker process
started on the same host (worker/spool.leftovers, worker/delivery.deliver_leftovers),
with the run's attempt, so a run the trial has moved on from is still refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.harness import ServerProcess, call
from tests.fixtures.services import ROOT
from tests.worker.conftest import celery_worker, unique_queue

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

# A worker process's runner spools, then the process dies at once (as SIGKILL would: no
# clean-up, the file as written so far and its lock released by the kernel).
SPOOL_AND_DIE = """
import os, sys
from pathlib import Path
from worker.spool import Spool
folder, trial_id, attempt, api = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
spool = Spool(folder, trial_id, 1_000_000, attempt=attempt, api_url=api)
offset = 0
for step in range(1, 11):
    spool.put("metrics", {"points": [["loss", float(step), 1.0 / step]]})
    text = f"epoch {step} loss={1.0 / step}\\n"
    spool.put("log", {"offset": offset, "text": text})
    offset += len(text.encode())
os._exit(0)
"""


def _spool_and_die(folder: Path, trial_id: int, attempt: int, api: str) -> None:
    subprocess.run(
        [sys.executable, "-c", SPOOL_AND_DIE, str(folder), str(trial_id), str(attempt), api],
        cwd=ROOT,
        check=True,
        timeout=60,
    )


def _running_trial(api: str) -> dict:
    body = {
        "name": "spool",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "limits": {"max_trials": 10, "max_retries": 1, "heartbeat_timeout_s": 600},
    }
    study = call("POST", f"{api}/api/v1/studies", json=body).json()
    asked = call("POST", f"{api}/api/v1/studies/{study['id']}/trials")
    assert asked.status_code == 201, asked.text
    return dict(asked.json())


def test_a_new_worker_process_delivers_what_a_killed_one_spooled(
    server: ServerProcess,
    broker: str,
    tmp_path: Path,
):
    api = server.url
    spool_dir = tmp_path / "spool"  # the worker's: TUNELAB_DATA_DIR/spool
    current = _running_trial(api)
    # A second trial, re-queued since its run spooled: that run's reports must be refused.
    stale = _running_trial(api)
    failed = call(
        "POST", f"{api}/api/v1/trials/{stale['id']}/complete", json={"state": "failed"}
    ).json()
    assert failed["state"] == "queued" and failed["retries"] == 1
    _spool_and_die(spool_dir, current["id"], 0, api)
    _spool_and_die(spool_dir, stale["id"], 0, api)
    assert len(list(spool_dir.iterdir())) == 2

    with celery_worker(broker, unique_queue(), tmp_path, slots=1):
        deadline = time.monotonic() + 60
        while list(spool_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not list(spool_dir.iterdir()), "the leftover spools were not delivered"

    points = call("GET", f"{api}/api/v1/trials/{current['id']}/metrics").json()["items"]
    assert [(p["step"], p["value"]) for p in points] == [(s, 1.0 / s) for s in range(1, 11)]
    log = call("GET", f"{api}/api/v1/trials/{current['id']}/logs").json()["text"]
    assert log == "".join(f"epoch {s} loss={1.0 / s}\n" for s in range(1, 11))
    # The superseded run's reports were refused (fencing), not stored under the next run.
    assert call("GET", f"{api}/api/v1/trials/{stale['id']}/metrics").json()["items"] == []
