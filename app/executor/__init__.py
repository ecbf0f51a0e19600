"""Keeps trials of running studies going: in-process, or by queueing Celery tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.db.session import Database
    from app.settings import Settings


class Executor(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def make_executor(settings: Settings, database: Database) -> Executor:
    """Celery tasks when a broker is configured, else trials run inside this process."""
    if settings.broker_url:
        from app.executor.dispatcher import CeleryDispatcher

        return CeleryDispatcher(settings, database)
    from app.executor.inprocess import InProcessExecutor

    return InProcessExecutor(settings, database)
