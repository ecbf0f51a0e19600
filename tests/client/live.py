"""A real server for client tests, started again when a loaded machine makes the first
start miss the fixture's deadline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.services import live_server

ATTEMPTS = 3


@contextmanager
def patient_live_server(
    database_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    for attempt in range(1, ATTEMPTS + 1):
        server = live_server(database_url, data_dir, env=env)
        try:
            url = server.__enter__()
        except RuntimeError:
            if attempt == ATTEMPTS:
                raise
            continue
        try:
            yield url
        finally:
            server.__exit__(None, None, None)
        return
