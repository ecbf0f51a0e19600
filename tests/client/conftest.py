from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.live import patient_live_server


@pytest.fixture
def server_url(db_url: str, tmp_path) -> Iterator[str]:
    """A real `tunelab serve` process on SQLite and on PostgreSQL."""
    with patient_live_server(db_url, tmp_path) as url:
        yield url
