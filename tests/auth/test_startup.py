"""The loopback rule: a server bound to a public address never runs without a token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from app.auth import service
from app.auth.models import Role
from app.db.session import Database
from app.settings import Settings
from tests.fixtures.services import live_server, run_cli


def _problem(settings: Settings) -> str | None:
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            return service.exposure_problem(settings, session)
    finally:
        database.dispose()


def test_loopback_may_run_without_tokens(settings: Settings) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        settings.host = host
        assert _problem(settings) is None


def test_public_host_without_a_token_is_refused(settings: Settings) -> None:
    settings.host = "0.0.0.0"
    problem = _problem(settings)
    assert problem is not None and "tunelab token create" in problem


def test_public_host_with_auth_off_is_refused(settings: Settings) -> None:
    settings.host = "0.0.0.0"
    settings.auth = "off"
    problem = _problem(settings)
    assert problem is not None and "TUNELAB_AUTH=off" in problem


def test_public_host_with_a_token_may_run(settings: Settings, database: Database) -> None:
    settings.host = "0.0.0.0"
    settings.admin_token = "short"
    assert "shorter" in (_problem(settings) or "")
    settings.admin_token = "a-long-enough-bootstrap-token"
    assert _problem(settings) is None
    settings.admin_token = ""
    with database.session() as session:
        service.create_token(session, Role.VIEWER)
    assert _problem(settings) is None


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=60, env=env)


@pytest.mark.slow
def test_serve_on_a_public_address(tmp_path: Path, sqlite_url: str) -> None:
    refused = _cli("serve", "--host", "0.0.0.0", "--port", "1", "--database-url", sqlite_url)
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0:1 without an API token" in refused.stderr

    created = _cli(
        "token", "create", "--role", "admin", "--name", "ops", "--database-url", sqlite_url
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("tl_") and "not shown again" in created.stderr
    listed = _cli("token", "list", "--database-url", sqlite_url)
    assert "admin" in listed.stdout and "ops" in listed.stdout and secret not in listed.stdout

    with live_server(sqlite_url, tmp_path, extra_args=["--host", "0.0.0.0"]) as url:
        assert httpx.get(f"{url}/api/v1/studies").status_code == 401
        ok = httpx.get(f"{url}/api/v1/studies", headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200

    token_id = listed.stdout.split()[0]
    assert _cli("token", "revoke", token_id, "--database-url", sqlite_url).returncode == 0
    again = _cli("serve", "--host", "0.0.0.0", "--port", "1", "--database-url", sqlite_url)
    assert again.returncode == 2
