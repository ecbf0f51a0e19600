"""PBT on Celery workers: PostgreSQL, Redis, a worker process, real checkpoint copies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.fixtures.services import redis_available, truncate_all
from tests.population.helpers import check_population_run, pbt_study
from tests.worker.conftest import celery_worker, thread_server, unique_queue

pytestmark = [
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("tunelab-celery"),
]

# A Redis database of its own: the worker tests flush theirs.
BROKER = os.environ.get("TUNELAB_TEST_PBT_REDIS", "redis://127.0.0.1:6379/7")


@pytest.fixture(scope="module")
def stack(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Path]]:
    if not redis_available():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    tmp_path = tmp_path_factory.mktemp("pbt-celery")
    truncate_all(pg_url)
    redis.Redis.from_url(BROKER).flushdb()
    with thread_server(pg_url, tmp_path, broker_url=BROKER, run_trials=True) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as api:
            yield api, tmp_path
    redis.Redis.from_url(BROKER).flushdb()


def test_members_exploit_through_a_celery_worker(stack):
    api, data = stack
    worker_data = data / "worker"
    worker_data.mkdir()
    queue = unique_queue()
    body = pbt_study("pbt-celery")
    body["execution"]["queue"] = queue
    with celery_worker(BROKER, queue, worker_data, slots=4):
        # The worker's checkpoint volume is its own data folder, not the API's.
        check_population_run(api, worker_data / "checkpoints", body)
