"""A live app (its dispatcher running, fast retries) and a real local receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.webhooks.receiver import Receiver


def fast_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        broker_url="",
        reaper_interval_s=0.1,
        webhook_poll_s=0.2,
        webhook_retry_base_s=0.05,
        webhook_retry_max_s=0.2,
        webhook_max_attempts=4,
        webhook_timeout_s=2.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def live(tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    settings = fast_settings(tmp_path, sqlite_url)
    database = Database(settings.resolved_database_url)
    with TestClient(create_app(settings, database)) as client:
        yield client
    database.dispose()


@pytest.fixture
def live_pg(tmp_path: Path, pg_url: str) -> Iterator[TestClient]:
    from tests.fixtures.services import truncate_all

    truncate_all(pg_url)
    settings = fast_settings(tmp_path, pg_url)
    database = Database(settings.resolved_database_url)
    with TestClient(create_app(settings, database)) as client:
        yield client
    database.dispose()
