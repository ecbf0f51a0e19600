from __future__ import annotations

import re
import time

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from app.auth import service
from app.auth.dependencies import TOKEN_CACHE_TTL_S
from app.auth.repository import TokenRepository
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.conftest import ADMIN_SECRET, Tokens, bearer
from tests.fixtures.studies import study_body

PUBLIC = {"/api/v1/health"}


def _api_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /api/v1, schema or not. FastAPI includes
    routers lazily, so the flat list comes from its route contexts."""
    out = []
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if not isinstance(context.original_route, APIRoute) or not path.startswith("/api/v1"):
            continue
        for method in sorted(context.methods or ()):
            out.append((method, path))
    return out


def test_route_walk_sees_the_schema(auth_client: TestClient) -> None:
    walked = {(m, p) for m, p in _api_routes(auth_client.app)}
    documented = {
        (method.upper(), path)
        for path, item in auth_client.app.openapi()["paths"].items()
        for method in item
    }
    assert documented <= walked


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_api_route_needs_a_token(auth_client: TestClient) -> None:
    routes = _api_routes(auth_client.app)
    assert len(routes) > 10
    for method, path in routes:
        response = auth_client.request(method, _concrete(path))
        if path in PUBLIC:
            assert response.status_code == 200, path
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["field"] == "authorization"
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_is_401_on_every_route(auth_client: TestClient) -> None:
    for method, path in _api_routes(auth_client.app):
        if path in PUBLIC:
            continue
        response = auth_client.request(
            method, _concrete(path), headers=bearer("tl_not-a-real-token")
        )
        assert response.status_code == 401, (method, path)


def test_viewer_reads_but_never_writes(auth_client: TestClient, tokens: Tokens) -> None:
    for method, path in _api_routes(auth_client.app):
        if method in ("GET", "HEAD") or path in PUBLIC:
            continue
        response = auth_client.request(method, _concrete(path), headers=bearer(tokens.viewer))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["field"] == "authorization"
    assert auth_client.get("/api/v1/studies", headers=bearer(tokens.viewer)).status_code == 200


def test_member_runs_studies_admin_deletes(auth_client: TestClient, tokens: Tokens) -> None:
    member, admin = bearer(tokens.member), bearer(tokens.admin)
    study = auth_client.post("/api/v1/studies", json=study_body(), headers=member)
    assert study.status_code == 201, study.text
    sid = study.json()["id"]
    trial = auth_client.post(f"/api/v1/studies/{sid}/trials", headers=member).json()
    tid = trial["id"]
    points = [{"name": "loss", "step": 1, "value": 0.5}]
    assert (
        auth_client.post(f"/api/v1/trials/{tid}/metrics", json=points, headers=member).status_code
        == 200
    )
    done = auth_client.post(f"/api/v1/trials/{tid}/complete", json={}, headers=member)
    assert done.json()["state"] == "completed"
    assert auth_client.delete(f"/api/v1/studies/{sid}", headers=member).status_code == 403
    assert (
        auth_client.post("/api/v1/tokens", json={"role": "viewer"}, headers=member).status_code
        == 403
    )
    assert auth_client.delete(f"/api/v1/studies/{sid}", headers=admin).status_code == 204


def test_bootstrap_admin_manages_tokens(auth_client: TestClient) -> None:
    admin = bearer(ADMIN_SECRET)
    created = auth_client.post(
        "/api/v1/tokens", json={"role": "member", "name": "ci"}, headers=admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["token"]
    assert secret.startswith("tl_") and body["prefix"] == secret[:7]
    listed = auth_client.get("/api/v1/tokens", headers=admin).json()["items"]
    assert [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0]
    me = auth_client.get("/api/v1/auth/me", headers=bearer(secret)).json()
    assert me["role"] == "member" and me["name"] == "ci"

    assert auth_client.delete(f"/api/v1/tokens/{body['id']}", headers=admin).status_code == 204
    assert auth_client.get("/api/v1/studies", headers=bearer(secret)).status_code == 401
    assert auth_client.get("/api/v1/tokens", headers=admin).json()["items"] == []
    missing = auth_client.delete("/api/v1/tokens/999", headers=admin)
    assert missing.status_code == 404 and missing.json()["field"] == "token_id"


def test_bad_token_body_names_its_field(auth_client: TestClient) -> None:
    response = auth_client.post(
        "/api/v1/tokens", json={"role": "root"}, headers=bearer(ADMIN_SECRET)
    )
    assert response.status_code == 422 and response.json()["field"] == "role"


def test_only_the_hash_is_stored(auth_client: TestClient, auth_settings: Settings) -> None:
    secret = auth_client.post(
        "/api/v1/tokens", json={"role": "viewer"}, headers=bearer(ADMIN_SECRET)
    ).json()["token"]
    engine = create_engine(auth_settings.resolved_database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM tokens")).mappings().all()
    engine.dispose()
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0].values())
    assert len(rows[0]["token_hash"]) == 64


def test_trial_token_is_scoped_to_its_trial(auth_client: TestClient, tokens: Tokens) -> None:
    member = bearer(tokens.member)
    sid = auth_client.post("/api/v1/studies", json=study_body(), headers=member).json()["id"]
    first = auth_client.post(f"/api/v1/studies/{sid}/trials", headers=member).json()
    second = auth_client.post(f"/api/v1/studies/{sid}/trials", headers=member).json()
    own = bearer(first["token"])
    assert first["token"].startswith("tlt_") and first["token"] != second["token"]
    tid = first["id"]

    points = [{"name": "loss", "step": 1, "value": 0.5}]
    assert (
        auth_client.post(f"/api/v1/trials/{tid}/metrics", json=points, headers=own).status_code
        == 200
    )
    assert auth_client.post(f"/api/v1/trials/{tid}/heartbeat", headers=own).status_code == 200
    log = auth_client.post(
        f"/api/v1/trials/{tid}/logs", json={"offset": 0, "text": "hi\n"}, headers=own
    )
    assert log.status_code == 204
    assert auth_client.get(f"/api/v1/trials/{tid}", headers=own).status_code == 200

    other = auth_client.post(f"/api/v1/trials/{second['id']}/metrics", json=points, headers=own)
    assert other.status_code == 403 and other.json()["field"] == "trial_id"
    for method, path in [
        ("POST", "/api/v1/studies"),
        ("GET", "/api/v1/studies"),
        ("GET", f"/api/v1/studies/{sid}"),
        ("POST", f"/api/v1/studies/{sid}/trials"),
        ("POST", f"/api/v1/trials/{tid}/cancel"),
        ("POST", f"/api/v1/trials/{tid}/retry"),
        ("GET", "/api/v1/tokens"),
    ]:
        assert auth_client.request(method, path, headers=own).status_code == 403, path
    done = auth_client.post(f"/api/v1/trials/{tid}/complete", json={}, headers=own)
    assert done.status_code == 200 and done.json()["value"] == 0.5


def test_the_token_cookie_counts_for_reads_only(auth_client: TestClient, tokens: Tokens) -> None:
    auth_client.cookies.set("tunelab_token", tokens.member)
    try:
        assert auth_client.get("/api/v1/studies").status_code == 200
        assert auth_client.post("/api/v1/studies", json=study_body()).status_code == 401
    finally:
        auth_client.cookies.clear()


def test_auto_mode_turns_on_with_the_first_token(client: TestClient) -> None:
    # The default test app: loopback, auth=auto and no token yet, so no token is needed.
    assert client.post("/api/v1/studies", json=study_body()).status_code == 201
    trial = client.post("/api/v1/studies/1/trials").json()
    assert trial["token"] is None
    secret = client.post("/api/v1/tokens", json={"role": "admin"}).json()["token"]
    assert client.get("/api/v1/studies").status_code == 401
    assert client.get("/api/v1/studies", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/health").status_code == 200


def test_auth_off_ignores_tokens(settings: Settings, database) -> None:
    settings.auth = "off"
    with TestClient(create_app(settings, database)) as client:
        assert client.get("/api/v1/studies", headers=bearer("tl_garbage")).status_code == 200
        assert client.get("/api/v1/auth/me").json()["name"] == "anonymous"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_non_loopback_host_requires_tokens(settings: Settings, database, host: str) -> None:
    settings.host = host
    with TestClient(create_app(settings, database)) as client:
        assert client.get("/api/v1/studies").status_code == 401


def test_a_token_is_looked_up_once_then_remembered(auth_client: TestClient, tokens: Tokens) -> None:
    # A runner reports every few milliseconds: its token must not cost a query each time.
    engine = auth_client.app.state.database.engine
    lookups: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if "FROM tokens" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(10):
            response = auth_client.get("/api/v1/studies", headers=bearer(tokens.member))
            assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # One lookup, or another should the requests outlast the cache's lifetime.
    assert 1 <= len(lookups) <= 2


def test_a_token_revoked_by_another_process_stops_working_within_the_ttl(
    auth_client: TestClient, auth_settings: Settings, tokens: Tokens
) -> None:
    member = bearer(tokens.member)
    assert auth_client.get("/api/v1/studies", headers=member).status_code == 200
    # As `tunelab token revoke` does: its own connection, not this server's API.
    elsewhere = Database(auth_settings.resolved_database_url)
    with elsewhere.session() as session:
        (token,) = [t for t in TokenRepository(session).list(False) if t.name == "member"]
        service.revoke(session, token.id)
    elsewhere.dispose()
    time.sleep(TOKEN_CACHE_TTL_S + 0.2)
    assert auth_client.get("/api/v1/studies", headers=member).status_code == 401
