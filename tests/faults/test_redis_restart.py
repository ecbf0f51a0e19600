"""Redis restarts while a Celery worker runs a study's trials (real server, worker, and a
Redis of the test's own, so that tests running beside it keep theirs)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.faults.harness import ServerProcess, wait_for
from tests.fixtures.services import free_port, start_redis
from tests.worker.conftest import LOSS_REGEX, TINY, celery_worker, unique_queue

pytestmark = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery,
]

EPOCHS = 10
MAX_LATENCY_S = 5.0


def _restart_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """Down and up again on the same port, in about a second."""
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(port=port).shutdown()  # saves first, as a packaged Redis does
    wait_for(lambda: not _port_open(port), 10, "Redis to stop")
    return start_redis(port, folder)


def _port_open(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.ConnectionError:
        return False


def _probe(url: str, done: threading.Event, latencies: list[float]) -> None:
    while not done.is_set():
        started = time.monotonic()
        try:
            httpx.get(url, timeout=30).raise_for_status()
            latencies.append(time.monotonic() - started)
        except httpx.HTTPError:
            latencies.append(float("inf"))
        time.sleep(0.2)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    start_redis(port, tmp_path)
    try:
        yield port
    finally:
        with contextlib.suppress(redis.ConnectionError):  # whichever server runs there now
            redis.Redis(port=port).shutdown(nosave=True)


def test_redis_restart_mid_study(fault_db_url: str, own_redis: int, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{own_redis}/0"
    server = ServerProcess(fault_db_url, tmp_path, env={"TUNELAB_BROKER_URL": broker})
    server.start()
    queue = unique_queue()
    body = {
        "name": "redis restart",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.1, "high": 10.0}},
        "strategy": {"name": "random", "seed": 3},
        "limits": {"max_trials": 12, "max_parallel_trials": 4, "heartbeat_timeout_s": 15},
        "execution": {
            "command": [sys.executable, TINY, "--sleep", "0.2", "--epochs", str(EPOCHS)],
            "metric_definitions": [{"name": "loss", "regex": LOSS_REGEX}],
            "queue": queue,
        },
    }
    try:
        with (
            httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api,
            celery_worker(broker, queue, tmp_path, slots=4),
        ):
            study_id = api.post("/studies", json=body).json()["id"]

            def completed() -> int:
                trials = api.get(f"/studies/{study_id}/trials", params={"limit": 1000}).json()
                return sum(1 for t in trials["items"] if t["state"] == "completed")

            wait_for(lambda: completed() >= 3, 180, "trials before the restart")
            # While Redis is away and coming back, the API keeps answering at once: no
            # request waits on Redis (the live publisher and the dispatcher fail fast).
            latencies: list[float] = []
            probing = threading.Event()
            prober = threading.Thread(
                target=_probe, args=(f"{server.url}/api/v1/studies/{study_id}", probing, latencies)
            )
            prober.start()
            try:
                _restart_redis(own_redis, tmp_path)
                time.sleep(3)
            finally:
                probing.set()
                prober.join(30)
            assert latencies and max(latencies) < MAX_LATENCY_S, max(latencies)
            wait_for(
                lambda: api.get(f"/studies/{study_id}").json()["state"] == "completed",
                300,
                "the study to finish after the restart",
            )
            time.sleep(1)
            study = api.get(f"/studies/{study_id}").json()
            trials = api.get(f"/studies/{study_id}/trials", params={"limit": 1000}).json()["items"]
            assert [t["number"] for t in trials] == list(range(len(trials)))
            assert study["trial_counts"]["running"] == 0 and study["trial_counts"]["queued"] == 0
            done = [t for t in trials if t["state"] == "completed"]
            assert len(done) == 12, [(t["number"], t["state"], t["error"]) for t in trials]
            for trial in done:
                points = api.get(f"/trials/{trial['id']}/metrics", params={"name": "loss"}).json()[
                    "items"
                ]
                # Every line the script printed is a stored point, each step once.
                assert sorted(p["step"] for p in points) == [float(e) for e in range(1, EPOCHS + 1)]
    finally:
        server.stop()
