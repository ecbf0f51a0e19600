"""Alembic, driven from code: `tunelab serve` and `tunelab db upgrade` call `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from app.db.session import ensure_sqlite_dir, make_engine

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
    if url.startswith("sqlite"):
        # Leave the file in WAL mode while nothing else has it open.
        engine = make_engine(url)
        with engine.connect():
            pass
        engine.dispose()


def revision(url: str, message: str) -> None:
    """Autogenerates a migration from the models (development only)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
