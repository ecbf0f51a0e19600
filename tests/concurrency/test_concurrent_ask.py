"""Many clients asking at once over real HTTP (a `tunelab serve` subprocess) never exceed
max_trials or max_parallel_trials and never hand out a trial number or grid point twice."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.engine.space import SearchSpace
from tests.fixtures.services import live_server, postgres_available, recreate_pg_database
from tests.fixtures.studies import study_body


@pytest.fixture(
    scope="module", params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[tuple[str, int]]:
    """(base URL, number of clients): 32 on PostgreSQL, 12 on SQLite. One server per
    database for the module: starting one costs more than a test."""
    data_dir = tmp_path_factory.mktemp("live")
    if request.param == "postgres":
        if not postgres_available():
            pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
        prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
        url, clients = recreate_pg_database(f"{prefix}_live_{worker_id}"), 32
    else:
        url, clients = f"sqlite:///{data_dir / 'live.db'}", 12
    with live_server(url, data_dir) as base:
        yield base, clients


def _swarm(base: str, study_id: int, clients: int, hold_s: float) -> list[dict[str, Any]]:
    """Each client asks, holds its trial a moment, tells; until the study is gone."""
    start = threading.Barrier(clients)
    asked: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
            start.wait()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                response = http.post(f"/studies/{study_id}/trials")
                if response.status_code == 410:
                    return
                if response.status_code == 409:
                    assert "Retry-After" in response.headers
                    time.sleep(0.02)  # the header says 2 s; a test cannot wait that long
                    continue
                if response.status_code != 201:
                    with lock:
                        errors.append(f"ask: {response.status_code} {response.text}")
                    return
                trial = response.json()
                with lock:
                    asked.append(trial)
                time.sleep(hold_s)
                done = http.post(f"/trials/{trial['id']}/complete", json={"value": float(index)})
                if done.status_code != 200:
                    with lock:
                        errors.append(f"tell: {done.status_code} {done.text}")
                    return
            with lock:
                errors.append("the study did not end in time")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return asked


def _all_trials(base: str, study_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/api/v1/studies/{study_id}/trials", params=params).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _most_at_once(trials: list[dict[str, Any]]) -> int:
    """The largest number of trials running at one instant, from the server's clock."""
    moments: list[tuple[datetime, int]] = []
    for trial in trials:
        moments.append((datetime.fromisoformat(trial["started_at"]), 1))
        moments.append((datetime.fromisoformat(trial["finished_at"]), -1))
    running = most = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # ends before starts
        running += change
        most = max(most, running)
    return most


@pytest.mark.slow
def test_concurrent_asks_respect_max_trials_and_max_parallel(server):
    base, clients = server
    body = study_body(limits={"max_trials": 3 * clients // 2, "max_parallel_trials": 5})
    study = httpx.post(f"{base}/api/v1/studies", json=body).json()
    asked = _swarm(base, study["id"], clients, hold_s=0.01)

    numbers = [t["number"] for t in asked]
    assert sorted(numbers) == list(range(3 * clients // 2))
    trials = _all_trials(base, study["id"])
    assert len(trials) == 3 * clients // 2
    assert all(t["state"] == "completed" for t in trials)
    assert _most_at_once(trials) <= 5
    final = httpx.get(f"{base}/api/v1/studies/{study['id']}").json()
    assert final["state"] == "completed" and final["n_trials"] == 3 * clients // 2


@pytest.mark.slow
def test_concurrent_asks_hand_out_each_grid_point_once(server):
    base, clients = server
    space = {
        "a": {"type": "int", "low": 0, "high": 3},
        "b": {"type": "categorical", "choices": ["x", "y", "z"]},
        "c": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5},
    }
    grid_size = 4 * 3 * 3
    assert SearchSpace.from_dict(space).grid_size(4) == grid_size
    body = study_body(
        space=space,
        strategy={"name": "grid", "grid_points": 4, "seed": 4},
        limits={"max_trials": 1000, "max_parallel_trials": clients},
    )
    study = httpx.post(f"{base}/api/v1/studies", json=body).json()
    asked = _swarm(base, study["id"], clients, hold_s=0.0)

    configs = [(t["params"]["a"], t["params"]["b"], t["params"]["c"]) for t in asked]
    assert len(configs) == grid_size
    assert len(set(configs)) == grid_size
    assert sorted(t["number"] for t in asked) == list(range(grid_size))
    final = httpx.get(f"{base}/api/v1/studies/{study['id']}").json()
    assert final["state"] == "completed" and final["n_trials"] == grid_size
