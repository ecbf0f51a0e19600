from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.migrate import upgrade
from tests.faults import private_pg
from tests.faults.harness import ServerProcess
from tests.fixtures.services import postgres_available, recreate_pg_database, redis_available

# The fault tests' own Redis database: emptied at each start (tickets of studies of an
# earlier, recreated database must not count).
BROKER = os.environ.get("TUNELAB_FAULT_BROKER", "redis://127.0.0.1:6379/12")


@pytest.fixture
def fault_db_url() -> str:
    if not postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
    # Read from the environment rather than xdist's `worker_id` fixture, so that the serial
    # run (`-p no:xdist`) works too.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    url = recreate_pg_database(f"{prefix}_faults_{worker}")
    upgrade(url)
    return url


@pytest.fixture
def server(fault_db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(fault_db_url, tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def private_db() -> Iterator[tuple[private_pg.PrivatePostgres, str]]:
    """A PostgreSQL server of the test's own (tests/faults/private_pg.py), which it may
    stop and start without disturbing anyone, with a migrated database."""
    why_not = private_pg.available()
    if why_not:
        pytest.skip(why_not)
    with private_pg.private_postgres() as server:
        url = server.create_database("tunelab")
        upgrade(url)
        yield server, url


@pytest.fixture
def broker() -> str:
    if not redis_available():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    client.close()
    return BROKER
