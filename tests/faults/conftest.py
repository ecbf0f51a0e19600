from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.migrate import upgrade
from tests.faults.harness import ServerProcess
from tests.fixtures.services import postgres_available, recreate_pg_database


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
