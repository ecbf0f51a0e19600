"""Two projects with a study each, and tokens that each hold a role in one of them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

import app.db.models  # noqa: F401  (every table in the metadata)
from app.db.base import Base
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.fixtures.studies import study_body
from tests.webhooks.receiver import Receiver

API = "/api/v1"
ADMIN_SECRET = "bootstrap-admin-token-for-projects-0123456789"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Side:
    """One project's objects and tokens."""

    project: str
    project_id: int
    study_id: int
    other_study_id: int
    trial_id: int  # running
    done_trial_id: int  # completed, with points and a log
    member: str
    viewer: str
    admin: str
    member_token_id: int
    webhook_id: int = 0  # a webhook of the project (its admin's), with one delivery
    delivery_id: int = 0


@dataclass
class World:
    client: TestClient
    database_url: str
    a: Side
    b: Side


@pytest.fixture
def project_settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        broker_url="",
        reaper_interval_s=3600,
        run_trials=False,
        auth="required",
        admin_token=ADMIN_SECRET,
    )


@pytest.fixture
def project_client(project_settings: Settings) -> Iterator[TestClient]:
    database = Database(project_settings.resolved_database_url)
    with TestClient(create_app(project_settings, database)) as client:
        yield client
    database.dispose()


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def make_token(client: TestClient, project: str, role: str, name: str) -> tuple[str, int]:
    body = _ok(
        client.post(
            f"{API}/tokens",
            json={"role": role, "project": project, "name": name},
            headers=bearer(ADMIN_SECRET),
        ),
        201,
    )
    return body["token"], body["id"]


def _side(client: TestClient, name: str, receiver_url: str) -> Side:
    admin = bearer(ADMIN_SECRET)
    project_id = _ok(client.post(f"{API}/projects", json={"name": name}, headers=admin), 201)["id"]
    member, member_id = make_token(client, name, "member", f"{name}-member")
    viewer, _ = make_token(client, name, "viewer", f"{name}-viewer")
    project_admin, _ = make_token(client, name, "admin", f"{name}-admin")
    as_member = bearer(member)
    study = _ok(
        client.post(f"{API}/studies", json=study_body(name=f"{name} study"), headers=as_member),
        201,
    )
    assert study["project_id"] == project_id
    other = _ok(
        client.post(f"{API}/studies", json=study_body(name=f"{name} other"), headers=as_member),
        201,
    )
    sid = study["id"]
    done = _ok(client.post(f"{API}/studies/{sid}/trials", headers=as_member), 201)["id"]
    points = [{"name": "loss", "step": 1, "value": 0.5}, {"name": "loss", "step": 2, "value": 0.4}]
    _ok(client.post(f"{API}/trials/{done}/metrics", json=points, headers=as_member))
    logged = client.post(
        f"{API}/trials/{done}/logs", json={"offset": 0, "text": "x\n"}, headers=as_member
    )
    assert logged.status_code == 204, logged.text
    _ok(client.post(f"{API}/trials/{done}/complete", json={}, headers=as_member))
    running = _ok(client.post(f"{API}/studies/{sid}/trials", headers=as_member), 201)["id"]
    webhook_id, delivery_id = _webhook(client, name, project_admin, receiver_url)
    return Side(
        project=name,
        project_id=project_id,
        study_id=sid,
        other_study_id=other["id"],
        trial_id=running,
        done_trial_id=done,
        member=member,
        viewer=viewer,
        admin=project_admin,
        member_token_id=member_id,
        webhook_id=webhook_id,
        delivery_id=delivery_id,
    )


def _webhook(client: TestClient, project: str, admin: str, url: str) -> tuple[int, int]:
    """A webhook made by the project's admin, and its test delivery, once delivered (so
    that the dispatcher changes no row while the walk compares snapshots)."""
    as_admin = bearer(admin)
    body = {"url": url, "project": project, "events": ["study.finished"]}
    hook = _ok(client.post(f"{API}/webhooks", json=body, headers=as_admin), 201)["id"]
    ping = _ok(client.post(f"{API}/webhooks/{hook}/test", headers=as_admin), 202)["id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = _ok(client.get(f"{API}/webhooks/{hook}/deliveries", headers=as_admin))["items"]
        if rows and rows[0]["state"] == "delivered":
            return hook, ping
        time.sleep(0.02)
    raise AssertionError(f"the test delivery of webhook {hook} was not delivered")


@pytest.fixture
def world(project_client: TestClient, project_settings: Settings) -> Iterator[World]:
    receiver = Receiver().start()
    try:
        yield World(
            client=project_client,
            database_url=project_settings.resolved_database_url,
            a=_side(project_client, "alpha", receiver.url),
            b=_side(project_client, "beta", receiver.url),
        )
    finally:
        receiver.stop()


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(
                    (
                        tuple(map(repr, row))
                        for row in conn.execute(text(f'SELECT * FROM "{table.name}"'))
                    ),
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()
