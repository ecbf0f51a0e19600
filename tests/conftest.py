"""Shared fixtures. The `db_url` fixture runs a test on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.fixtures.services import (
    PG_ADMIN_URL,
    postgres_available,
    recreate_pg_database,
    truncate_all,
)

_SQLITE_TEMPLATE: Path | None = None


@pytest.fixture(autouse=True)
def _keep_tunelab_variables() -> Iterator[None]:
    """`tunelab serve` and `tunelab worker` export TUNELAB_* variables for the processes
    they start (the API's URL, the broker); a test that runs them in this process must not
    hand them to a later test's servers, which would then report to a server long gone."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("TUNELAB_")}
    yield
    for name in [name for name in os.environ if name.startswith("TUNELAB_")]:
        if name not in saved:
            del os.environ[name]
    os.environ.update(saved)


def _sqlite_template(tmp_root: Path) -> Path:
    """Migrated once per process, then copied: a fresh database per test costs a file copy."""
    global _SQLITE_TEMPLATE
    if _SQLITE_TEMPLATE is None:
        from app.db.migrate import upgrade

        path = tmp_root / "template.db"
        upgrade(f"sqlite:///{path}")
        _SQLITE_TEMPLATE = path
    return _SQLITE_TEMPLATE


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> str:
    """A migrated PostgreSQL database of this xdist worker's own."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not answering on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    from app.db.migrate import upgrade

    # A prefix of its own lets several checkouts test against one server at once.
    prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
    url = recreate_pg_database(f"{prefix}_{worker_id}")
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        root = tmp_path_factory.getbasetemp()
        path = tmp_path_factory.mktemp("db") / "tunelab.db"
        shutil.copy(_sqlite_template(root), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "tunelab.db"
    shutil.copy(_sqlite_template(tmp_path_factory.getbasetemp()), path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, broker_url="", reaper_interval_s=0.2)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    database.dispose()


@pytest.fixture
def client(settings: Settings, database: Database) -> Iterator[TestClient]:
    app = create_app(settings, database)
    with TestClient(app) as test_client:
        yield test_client


__all__ = ["PG_ADMIN_URL"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test under tests/browser drives Chromium: it runs in the serial phase, one
    # browser at a time (scripts/test), even where its module forgot the marker.
    browser_dir = Path(__file__).parent / "browser"
    for item in items:
        if browser_dir in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))
