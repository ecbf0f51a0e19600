"""The start-up rule: a server bound beyond loopback never runs without a token."""

from __future__ import annotations

from app.auth.service import exposure_problem
from app.db.session import Database
from app.settings import Settings


def startup_problem(settings: Settings) -> str | None:
    """Why `tunelab serve` must refuse to start, or None. Reads the database's tokens."""
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            return exposure_problem(settings, session)
    finally:
        database.dispose()
