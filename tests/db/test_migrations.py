"""The migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import app.db.models  # noqa: F401  (registers every table)
from app.db.base import Base
from app.db.migrate import alembic_config, upgrade
from tests.fixtures.services import ROOT, postgres_available, recreate_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    if not postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
    return recreate_pg_database(f"{prefix}_migrations_{worker_id}")


def test_upgrade_head_gives_exactly_the_models_schema(empty_url):
    upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, Base.metadata)
            head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
            assert context.get_current_revision() == head
        assert diff == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade(url)
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


@pytest.mark.slow
def test_cli_db_upgrade_creates_a_fresh_sqlite_database(tmp_path):
    path = tmp_path / "nested" / "cli.db"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade", "--database-url", f"sqlite:///{path}"],
        cwd=ROOT,
        env={**os.environ, "TUNELAB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout
    engine = create_engine(f"sqlite:///{path}")
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
