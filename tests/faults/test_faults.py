"""Faults with the real parts: the API process, PostgreSQL and a worker process die mid-study.

Each time the study finishes, no acknowledged metric point is lost (re-sent batches are
idempotent on (trial, name, step)), trial numbers are 0..n-1 once each, and no trial is
left running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import (
    Ledger,
    ServerProcess,
    call,
    check_invariants,
    run_clients,
    wait_for,
)
from tests.faults.private_pg import PrivatePostgres
from tests.fixtures.services import ROOT
from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.postgres]

MAX_TRIALS = 40


def _study(api: str, **limits: object) -> int:
    body = study_body(
        limits={
            "max_trials": MAX_TRIALS,
            "max_parallel_trials": 8,
            "heartbeat_timeout_s": 15,
            **limits,
        }
    )
    response = call("POST", f"{api}/api/v1/studies", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _settled(api: str, study_id: int) -> bool:
    try:
        study = httpx.get(f"{api}/api/v1/studies/{study_id}", timeout=5).json()
    except httpx.HTTPError:
        return False
    counts = study["trial_counts"]
    return study["state"] == "completed" and counts["running"] == 0 and counts["queued"] == 0


def _join(threads, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients did not finish"


def test_api_restart_mid_study(server: ServerProcess, fault_db_url: str) -> None:
    sid = _study(server.url)
    ledger = Ledger()
    threads = run_clients(server.url, sid, 8, ledger, pause_s=0.05)
    wait_for(lambda: len(ledger.completed) >= 8, 120, "trials before the restart")
    server.kill(signal.SIGKILL)  # mid-request for several clients
    time.sleep(0.5)
    server.start()
    _join(threads, 600)
    wait_for(lambda: _settled(server.url, sid), 60, "the study to settle")
    summary = check_invariants(fault_db_url, sid, ledger, MAX_TRIALS)
    assert summary["completed"] >= MAX_TRIALS - 8


def test_postgres_restart_mid_study(
    private_db: tuple[PrivatePostgres, str], tmp_path: Path
) -> None:
    """PostgreSQL (a server of the test's own: the shared one serves other runs) is
    stopped and started again while 8 clients work on a study."""
    database, url = private_db
    server = ServerProcess(url, tmp_path)
    server.start()
    try:
        sid = _study(server.url)
        ledger = Ledger()
        threads = run_clients(server.url, sid, 8, ledger, pause_s=0.05)
        wait_for(lambda: len(ledger.completed) >= 8, 120, "trials before the restart")
        database.stop()
        time.sleep(2)
        database.start()
        _join(threads, 600)
        wait_for(lambda: _settled(server.url, sid), 60, "the study to settle")
        summary = check_invariants(url, sid, ledger, MAX_TRIALS)
        assert summary["completed"] >= MAX_TRIALS - 8
    finally:
        server.stop()


def _worker(api: str, sid: int, ledger_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.sdk_worker", api, str(sid), str(ledger_path)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )


def _read_ledger(paths: list[Path]) -> Ledger:
    ledger = Ledger()
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the line a SIGKILL cut short
                continue
            ledger.add_points(row["trial"], [{"name": row["name"], "step": row["step"]}])
    return ledger


def test_sigkill_a_worker_mid_trial(
    server: ServerProcess, fault_db_url: str, tmp_path: Path
) -> None:
    sid = _study(server.url, max_trials=12, max_parallel_trials=3, max_retries=1)
    paths = [tmp_path / f"worker-{i}.jsonl" for i in range(3)]
    workers = [_worker(server.url, sid, paths[i]) for i in range(2)]
    victim = workers[0]

    def victim_mid_trial() -> bool:
        rows = paths[0].read_text().splitlines() if paths[0].exists() else []
        return len(rows) >= 6  # a few steps into a trial

    wait_for(victim_mid_trial, 60, "the victim to be mid-trial")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    workers.append(_worker(server.url, sid, paths[2]))
    for process in workers[1:]:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr.decode()
    wait_for(lambda: _settled(server.url, sid), 60, "the study to settle")
    ledger = _read_ledger(paths)
    summary = check_invariants(fault_db_url, sid, ledger, 12)
    trials = httpx.get(f"{server.url}/api/v1/studies/{sid}/trials").json()["items"]
    retried = [t for t in trials if t["retries"] > 0]
    assert retried, "the killed worker's trial was re-queued and run again"
    assert all(t["state"] == "completed" for t in retried)
    assert summary["completed"] == 12
