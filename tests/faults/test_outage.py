"""Outages with the real parts: `tunelab serve` on PostgreSQL with Redis as broker, a real
`tunelab worker` (Celery) and a real script printing a metric every 0.5 s.

- The API is stopped for TUNELAB_FAULT_OUTAGE_S seconds while the trial runs, then started
  again on the same port and database: the trial completes and every printed point is
  stored exactly once (the runner spooled them, worker/spool.py). The default is 60 s, not
  the 120 s of issue 17: with the server's start (15-20 s on a loaded machine) the API is
  away for about 80 s, past the old 60 s retry bound that killed trials, past the 60 s
  heartbeat timeout, and past the 20 s trial's end (its completion waits in the runner),
  while the fault suite stays within a few minutes. Set 120 for the issue's figure; the
  runner's own limit is TUNELAB_OUTAGE_LIMIT_S (1 hour).
- The worker is SIGKILLed mid-trial: its trial is back in the queue within 15 s on the
  defaults (worker liveness, app/executor/liveness.py), and a new worker completes it.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.harness import ServerProcess, call
from tests.faults.private_pg import PrivatePostgres
from tests.worker.conftest import TINY, celery_worker, unique_queue

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_S = float(os.environ.get("TUNELAB_FAULT_OUTAGE_S", "60"))
# PostgreSQL's outage (issue 17: one minute), on a server of the test's own.
DB_OUTAGE_S = float(os.environ.get("TUNELAB_FAULT_DB_OUTAGE_S", "60"))
STEPS = 40
LINE = re.compile(r"epoch (?P<step>\d+) loss=(?P<value>\S+)")


@pytest.fixture
def served(fault_db_url: str, broker: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """`tunelab serve` with the broker, sweeping at its default interval (2 s)."""
    server = ServerProcess(
        fault_db_url,
        tmp_path,
        env={"TUNELAB_BROKER_URL": broker, "TUNELAB_REAPER_INTERVAL_S": "2.0"},
    )
    # The URL the server hands to workers with each task.
    server.env["TUNELAB_API_URL"] = server.url
    server.start()
    yield server
    server.stop()


def _study(api: str, queue: str, **limits: Any) -> int:
    body = {
        "name": "outage",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 1.0, "high": 2.0}},
        "strategy": {"name": "random", "seed": 1},
        # heartbeat_timeout_s stays at its default: worker liveness is what is tested.
        "limits": {"max_trials": 1, "max_parallel_trials": 1, **limits},
        "execution": {
            "command": [sys.executable, TINY, "--epochs", str(STEPS), "--sleep", "0.5"],
            "metric_definitions": [{"name": "loss", "regex": LINE.pattern}],
            "queue": queue,
        },
    }
    answer = call("POST", f"{api}/api/v1/studies", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _trial(api: str, study_id: int) -> dict[str, Any] | None:
    try:
        items = httpx.get(f"{api}/api/v1/studies/{study_id}/trials", timeout=5).json()["items"]
    except httpx.HTTPError:
        return None
    return items[0] if items else None


def _points(api: str, trial_id: int) -> list[dict[str, Any]]:
    answer = call("GET", f"{api}/api/v1/trials/{trial_id}/metrics", params={"limit": 10000})
    return list(answer.json()["items"])


def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def _running_with_points(api: str, study_id: int) -> Any:
    """The study's trial once it runs and has stored 4 s of points."""
    trial = _wait(
        lambda: (t := _trial(api, study_id)) and t["state"] == "running" and t,
        60,
        "the trial to start",
    )
    _wait(lambda: len(_points(api, trial["id"])) >= 8, 60, "4 s of points")
    return trial


def _ended(api: str, study_id: int, what: str) -> Any:
    return _wait(lambda: (t := _trial(api, study_id)) and t["state"] != "running" and t, 90, what)


def _completed_with_every_point_once(api: str, done: Any, trial_id: int) -> list[Any]:
    """Checks the trial completed in its first run with every printed point once, in step
    order, and the console output whole (each line once); returns the stored points."""
    assert done["state"] == "completed", done
    assert done["retries"] == 0
    stored = [(p["step"], p["value"]) for p in _points(api, trial_id)]
    log = call("GET", f"{api}/api/v1/trials/{trial_id}/logs").json()["text"]
    printed = [(float(m["step"]), float(m["value"])) for m in LINE.finditer(log)]
    assert [s for s, _ in stored] == [float(s) for s in range(1, STEPS + 1)], stored
    assert stored == printed
    return stored


def test_an_api_outage_loses_no_point(served: ServerProcess, broker: str, tmp_path: Path):
    api = served.url
    queue = unique_queue()
    with celery_worker(broker, queue, tmp_path, slots=1) as worker:
        study_id = _study(api, queue)
        trial = _running_with_points(api, study_id)
        served.stop()
        stopped_at = time.monotonic()
        time.sleep(OUTAGE_S)
        assert worker.poll() is None, "the worker died during the outage"
        served.start()
        restarted_in = time.monotonic() - stopped_at
        done = _ended(api, study_id, "the trial to end after the API came back")
    # The same run, never taken for lost.
    stored = _completed_with_every_point_once(api, done, trial["id"])
    print(f"outage {OUTAGE_S:g} s; API back after {restarted_in:.0f} s; {len(stored)} points")


def test_a_database_outage_loses_no_point(
    private_db: tuple[PrivatePostgres, str], broker: str, tmp_path: Path
):
    """PostgreSQL (a server of the test's own) stops for DB_OUTAGE_S while a real trial
    runs: the API answers 503, the runner spools, and when the database is back every
    printed point is stored once and the trial completes in the same run."""
    database, url = private_db
    server = ServerProcess(
        url, tmp_path, env={"TUNELAB_BROKER_URL": broker, "TUNELAB_REAPER_INTERVAL_S": "2.0"}
    )
    server.env["TUNELAB_API_URL"] = server.url
    server.start()
    api = server.url
    queue = unique_queue()
    try:
        with celery_worker(broker, queue, tmp_path, slots=1) as worker:
            study_id = _study(api, queue)
            trial = _running_with_points(api, study_id)
            database.stop()
            stopped_at = time.monotonic()
            # The API stays up and answers 503 meanwhile.
            assert httpx.get(f"{api}/api/v1/studies/{study_id}", timeout=10).status_code == 503
            time.sleep(max(0.0, DB_OUTAGE_S - (time.monotonic() - stopped_at)))
            assert worker.poll() is None, "the worker died during the outage"
            database.start()
            done = _ended(api, study_id, "the trial to end after the database came back")
        # The same run: neither taken for lost nor re-queued.
        stored = _completed_with_every_point_once(api, done, trial["id"])
        print(f"database outage {DB_OUTAGE_S:g} s; {len(stored)} points, each once")
    finally:
        server.stop()


def test_a_killed_worker_is_noticed_within_15_s(served: ServerProcess, broker: str, tmp_path: Path):
    api = served.url
    queue = unique_queue()
    with celery_worker(broker, queue, tmp_path, slots=1) as worker:
        study_id = _study(api, queue, max_retries=1)
        trial = _wait(
            lambda: (t := _trial(api, study_id)) and t["state"] == "running" and t,
            60,
            "the trial to start",
        )
        _wait(lambda: len(_points(api, trial["id"])) >= 2, 60, "the first points")
        os.kill(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        back = _wait(
            lambda: (t := _trial(api, study_id)) and t["state"] != "running" and t,
            30,
            "the trial to leave running",
        )
        noticed_s = time.monotonic() - killed_at
    print(f"SIGKILLed worker noticed after {noticed_s:.1f} s: {back['state']} ({back['error']})")
    assert back["state"] in ("queued", "failed"), back
    assert noticed_s <= 15, noticed_s
    assert "was lost" in (back["error"] or "")
    # A new worker takes the re-queued trial and completes it.
    with celery_worker(broker, queue, tmp_path, slots=1):
        done = _wait(
            lambda: (t := _trial(api, study_id)) and t["state"] in ("completed", "failed") and t,
            90,
            "the retried trial to end",
        )
    assert done["state"] == "completed" and done["retries"] == 1, done
    # The second run resumed from the script's checkpoint (saved each epoch); a point the
    # killed run printed in its last moments, before its 0.2 s batch left, died with it.
    steps = [p["step"] for p in _points(api, trial["id"])]
    assert steps == sorted(set(steps)) and steps[-1] == float(STEPS), steps
    assert len(steps) >= STEPS - 1, steps


def test_a_killed_api_requeues_its_in_process_trials_at_start(server: ServerProcess):
    """The embedded default: the executor lives in the API process, so its trials die with
    it; the next start on the same host and port re-queues them at once."""
    api = server.url
    study_id = _study(api, "unused", max_retries=1)
    trial = _wait(
        lambda: (t := _trial(api, study_id)) and t["state"] == "running" and t,
        60,
        "the trial to start",
    )
    _wait(lambda: len(_points(api, trial["id"])) >= 2, 60, "the first points")
    server.kill(signal.SIGKILL)
    server.start()
    started_at = time.monotonic()
    again = _wait(
        lambda: (t := _trial(api, study_id)) and t["retries"] == 1 and t,
        15,
        "the trial to be re-queued",
    )
    print(f"re-queued {time.monotonic() - started_at:.1f} s after the start: {again['error']}")
    done = _wait(
        lambda: (t := _trial(api, study_id)) and t["state"] in ("completed", "failed") and t,
        90,
        "the retried trial to end",
    )
    assert done["state"] == "completed", done
    # The second run resumed from the script's checkpoint; a point the first printed in
    # its last moments (before the runner's 0.2 s batch left) died with the process.
    steps = [p["step"] for p in _points(api, trial["id"])]
    assert steps == sorted(set(steps)) and steps[-1] == float(STEPS), steps
