"""Called by the API on start: seeds the demo study if asked, then starts the executor."""

from __future__ import annotations

from app.db.session import Database
from app.executor import Executor, make_executor
from app.settings import Settings


def start_trials(settings: Settings, database: Database) -> Executor:
    if settings.demo:
        from app.executor.demo import seed_demo

        seed_demo(database)
    executor = make_executor(settings, database)
    executor.start()
    return executor
