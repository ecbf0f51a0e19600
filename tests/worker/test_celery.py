"""Real parts: PostgreSQL, Redis, an API server process, Celery worker processes and
training subprocesses."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.fixtures.services import redis_available, truncate_all
from tests.worker.conftest import (
    TEST_REDIS,
    all_trials,
    assert_study_ran,
    celery_worker,
    pid_alive,
    thread_server,
    tiny_study,
    trial_pid,
    unique_queue,
    wait_for,
    wait_study_done,
)

pytestmark = [
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("tunelab-celery"),
]


@pytest.fixture(scope="module")
def stack(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, str]]:
    """An API server with the broker set, on a clean database and Redis DB of its own;
    shared by the tests of this module, whose studies are independent."""
    if not redis_available():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    tmp_path = tmp_path_factory.mktemp("celery")
    truncate_all(pg_url)
    redis.Redis.from_url(TEST_REDIS).flushdb()
    with thread_server(pg_url, tmp_path, broker_url=TEST_REDIS, run_trials=True) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as api:
            yield api, str(tmp_path)
    redis.Redis.from_url(TEST_REDIS).flushdb()


def test_a_12_trial_study_runs_on_a_celery_worker_with_early_stopping(stack):
    api, data = stack
    queue = unique_queue()
    body = tiny_study()
    body["execution"]["queue"] = queue
    with celery_worker(TEST_REDIS, queue, Path(data), slots=4):
        created = api.post("/studies", json=body)
        assert created.status_code == 201, created.text
        assert_study_ran(api, created.json()["id"])
    workers = {t["worker"] for t in all_trials(api, created.json()["id"])}
    assert len(workers) > 1  # the worker's slots ran trials side by side


def test_a_sigkilled_workers_trials_are_recovered(stack):
    api, data = stack
    queue = unique_queue()
    body = tiny_study(
        strategy={"name": "random", "seed": 5},
        limits={
            "max_trials": 3,
            "max_parallel_trials": 2,
            "heartbeat_timeout_s": 3,
            "max_retries": 1,
        },
    )
    del body["fidelity"]
    body["execution"]["command"] += ["--epochs", "25", "--sleep", "0.2"]
    body["execution"]["queue"] = queue
    created = api.post("/studies", json=body)
    assert created.status_code == 201, created.text
    study_id = created.json()["id"]
    with celery_worker(TEST_REDIS, queue, Path(data), slots=2) as doomed:
        running = wait_for(
            lambda: (
                len(r := [t for t in all_trials(api, study_id) if t["state"] == "running"]) == 2
                and r
            ),
            60,
            interval_s=0.2,
            what="two running trials",
        )
        pids = [wait_for(lambda t=t: trial_pid(api, t["id"]), 30) for t in running]
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        # Its training processes die with it rather than hold the GPU.
        wait_for(
            lambda: not any(pid_alive(p) for p in pids), 5, what="orphaned trial processes to end"
        )
        # Within the heartbeat timeout (3 s) plus a sweep, both trials are queued again.
        wait_for(
            lambda: all(api.get(f"/trials/{t['id']}").json()["state"] == "queued" for t in running),
            15,
            interval_s=0.2,
            what="the killed worker's trials to be re-queued",
        )
    with celery_worker(TEST_REDIS, queue, Path(data), slots=2):
        study = wait_study_done(api, study_id, 90)
    assert study["state"] == "completed", study["state_reason"]
    for trial in running:
        again = api.get(f"/trials/{trial['id']}").json()
        assert again["state"] == "completed" and again["retries"] == 1
    assert all(t["state"] == "completed" for t in all_trials(api, study_id))
