"""Apps with authentication switched on, and tokens of every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import service
from app.auth.models import Role
from app.db.session import Database
from app.main import create_app
from app.settings import Settings

ADMIN_SECRET = "bootstrap-admin-token-for-tests-0123456789"


@dataclass
class Tokens:
    admin: str
    member: str
    viewer: str


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def auth_settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        broker_url="",
        reaper_interval_s=0.2,
        auth="required",
        admin_token=ADMIN_SECRET,
    )


@pytest.fixture
def auth_client(auth_settings: Settings) -> Iterator[TestClient]:
    database = Database(auth_settings.resolved_database_url)
    with TestClient(create_app(auth_settings, database)) as client:
        yield client
    database.dispose()


@pytest.fixture
def tokens(auth_settings: Settings) -> Tokens:
    database = Database(auth_settings.resolved_database_url)
    with database.session() as session:
        _, member = service.create_token(session, Role.MEMBER, "member")
        _, viewer = service.create_token(session, Role.VIEWER, "viewer")
        _, admin = service.create_token(session, Role.ADMIN, "admin")
    database.dispose()
    return Tokens(admin=admin, member=member, viewer=viewer)
