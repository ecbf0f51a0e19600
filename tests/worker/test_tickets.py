"""Tickets stay true to the tasks in flight across Redis trouble (a Redis of the test's own):
a started task removes its ticket even when Redis does not answer at that moment, and
after a Redis restart, which can lose a task but keep its ticket, tickets start afresh."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fixtures.services import free_port, start_redis
from worker import celery_app, tickets

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    process = start_redis(port, tmp_path)
    try:
        yield port
    finally:
        # Whichever server runs on the port now (a test may have restarted it).
        client = redis.Redis(port=port)
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        process.wait(10)


@pytest.fixture
def own_redis(redis_port: int) -> str:
    return f"redis://127.0.0.1:{redis_port}/0"


def test_a_ticket_is_removed_after_redis_comes_back(own_redis: str) -> None:
    admin = redis.Redis.from_url(own_redis)
    tickets.add(admin, 7, "t1")
    tickets.add(admin, 7, "t2")
    # Commands wait unanswered, as while Redis saves or loads its data on a restart.
    admin.execute_command("CLIENT", "PAUSE", 4000, "ALL")
    started = time.monotonic()
    celery_app._take_ticket(own_redis, 7, "t1")  # must neither raise nor wait long
    assert time.monotonic() - started < 3.5
    deadline = time.monotonic() + 15
    while tickets.pending(admin, 7) != 1:
        assert time.monotonic() < deadline, "the ticket was never removed"
        time.sleep(0.2)
    assert admin.hkeys("tunelab:tickets:7") == [b"t2"]


def test_a_ticket_is_removed_at_once_when_redis_answers(own_redis: str) -> None:
    admin = redis.Redis.from_url(own_redis)
    tickets.add(admin, 8, "t1")
    celery_app._take_ticket(own_redis, 8, "t1")
    assert tickets.pending(admin, 8) == 0


def test_tickets_start_afresh_after_a_restart_that_kept_them(
    redis_port: int, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_port)
    tickets.add(client, 7, "before any dispatcher")
    assert tickets.forget_all_after_restart(client)  # a Redis never seen: counted afresh
    tickets.add(client, 7, "queued")
    assert not tickets.forget_all_after_restart(client)
    assert tickets.pending(client, 7) == 1

    # Restart with the dump saved at shutdown, as the shared Redis does.
    client.shutdown(save=True)
    restarted = start_redis(redis_port, tmp_path)
    try:
        client = redis.Redis(port=redis_port)
        assert tickets.pending(client, 7) == 1  # kept by the dump, its task maybe not
        assert tickets.forget_all_after_restart(client)
        assert tickets.pending(client, 7) == 0
        tickets.add(client, 7, "after")
        assert not tickets.forget_all_after_restart(client)
        assert tickets.pending(client, 7) == 1
    finally:
        client.shutdown(nosave=True)
        restarted.wait(10)
