"""Real parts for fault tests: a restartable API server process, resilient ask/report/tell
clients that record what the server acknowledged, and the invariants checked afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.fixtures.services import ROOT, free_port

# 503: the database is restarting (the API rolled back). A 500 is a bug and fails the test.
RETRY_STATUSES = {502, 503, 504}


class ServerProcess:
    """`tunelab serve` on a fixed port, which can be killed and started again."""

    def __init__(self, database_url: str, data_dir: Path, env: dict[str, str] | None = None):
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TUNELAB_DATA_DIR": str(data_dir),
            "TUNELAB_REAPER_INTERVAL_S": "0.5",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 240) -> None:
        self.starts += 1
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.data_dir / f"server-{self.starts}.log").read_text())
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def call(method: str, url: str, retry_for_s: float = 300, **kwargs: Any) -> httpx.Response:
    """A request re-sent on connection errors and 5xx, as the SDK and workers do."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.05
    while True:
        try:
            response = httpx.request(method, url, timeout=10, **kwargs)
            if response.status_code not in RETRY_STATUSES:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {url} kept failing")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


@dataclass
class Ledger:
    """What the server acknowledged, per trial: points (name, step) and completions."""

    points: dict[int, set[tuple[str, float]]] = field(default_factory=dict)
    completed: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_points(self, trial_id: int, batch: list[dict[str, Any]]) -> None:
        with self.lock:
            self.points.setdefault(trial_id, set()).update((p["name"], p["step"]) for p in batch)


def run_client(
    api: str,
    study_id: int,
    ledger: Ledger,
    steps: int = 5,
    pause_s: float = 0.02,
    headers: dict[str, str] | None = None,
) -> None:
    """Ask, report `steps` batches (one per step), tell; until the study has no more."""
    headers = headers or {}
    try:
        while True:
            asked = call("POST", f"{api}/api/v1/studies/{study_id}/trials", headers=headers)
            if asked.status_code == 410:
                return
            if asked.status_code == 409:
                time.sleep(0.1)
                continue
            if asked.status_code != 201:
                ledger.errors.append(f"ask {asked.status_code} {asked.text}")
                return
            trial = asked.json()
            own = {"Authorization": f"Bearer {trial['token']}"} if trial.get("token") else headers
            for step in range(1, steps + 1):
                batch = [
                    {"name": "loss", "step": step, "value": 1.0 / (step + trial["number"])},
                    {"name": "acc", "step": step, "value": step / 10},
                ]
                sent = call(
                    "POST", f"{api}/api/v1/trials/{trial['id']}/metrics", json=batch, headers=own
                )
                if sent.status_code != 200:
                    ledger.errors.append(f"report {sent.status_code} {sent.text}")
                    return
                ledger.add_points(trial["id"], batch)
                if sent.json()["decision"] != "continue":
                    break
                time.sleep(pause_s)
            done = call("POST", f"{api}/api/v1/trials/{trial['id']}/complete", json={}, headers=own)
            if done.status_code != 200:
                ledger.errors.append(f"complete {done.status_code} {done.text}")
                return
            with ledger.lock:
                ledger.completed.add(trial["id"])
    except Exception as exc:  # a client that dies must fail the test, not hang it
        ledger.errors.append(repr(exc))


def run_clients(
    api: str, study_id: int, n: int, ledger: Ledger, **kwargs: Any
) -> list[threading.Thread]:
    threads = [
        threading.Thread(
            target=run_client, args=(api, study_id, ledger), kwargs=kwargs, daemon=True
        )
        for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    return threads


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def check_invariants(
    database_url: str, study_id: int, ledger: Ledger, max_trials: int
) -> dict[str, int]:
    """The study finished; every acknowledged point is stored; numbers are 0..n-1 once each;
    no trial is left running or queued; every acknowledged completion holds."""
    assert not ledger.errors, ledger.errors
    engine = create_engine(database_url)
    with engine.connect() as conn:
        state = conn.execute(
            text("SELECT state FROM studies WHERE id = :s"), {"s": study_id}
        ).scalar()
        trials = conn.execute(
            text("SELECT id, number, state FROM trials WHERE study_id = :s ORDER BY number"),
            {"s": study_id},
        ).all()
        stored = conn.execute(
            text(
                "SELECT p.trial_id, p.name, p.step FROM metric_points p "
                "JOIN trials t ON t.id = p.trial_id WHERE t.study_id = :s"
            ),
            {"s": study_id},
        ).all()
    engine.dispose()
    assert state == "completed", state
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(numbers))), numbers
    assert len(numbers) >= max_trials
    states = {t.id: t.state for t in trials}
    assert not [t for t in trials if t.state in ("running", "queued")], trials
    have: dict[int, set[tuple[str, float]]] = {}
    for trial_id, name, step in stored:
        have.setdefault(trial_id, set()).add((name, float(step)))
    for trial_id, points in ledger.points.items():
        missing = {(n, float(s)) for n, s in points} - have.get(trial_id, set())
        assert not missing, (trial_id, missing)
    for trial_id in ledger.completed:
        assert states[trial_id] in ("completed", "stopped", "cancelled"), (
            trial_id,
            states[trial_id],
        )
    return {
        "trials": len(trials),
        "completed": sum(1 for s in states.values() if s == "completed"),
        "failed": sum(1 for s in states.values() if s == "failed"),
        "points": len(stored),
    }
