"""Every route of the app, walked with a token of another project: 404 as for a study or
trial that does not exist, and nothing changed. A new route that names a study or trial is
walked without being listed here; one that names neither must be put in GLOBAL_ROUTES
(with why it is global), so that a route cannot slip past the check unnoticed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests.projects.conftest import ADMIN_SECRET, Side, World, bearer, snapshot

# Routes that name no study or trial, and why each may be reached by any project's token.
GLOBAL_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): "public",
    ("GET", "/api/v1/auth/me"): "the caller's own token",
    ("GET", "/api/v1/studies"): "a listing: only the caller's projects (test_projects.py)",
    ("POST", "/api/v1/studies"): "creates in a project where the caller is a member",
    ("GET", "/api/v1/events"): "the stream of the caller's projects' studies",
    ("POST", "/api/v1/studies/import"): "creates in a project where the caller is a member",
    ("POST", "/api/v1/studies/import/stream"): "as /studies/import",
    ("POST", "/api/v1/studies/import/optuna"): "as /studies/import",
    ("POST", "/api/v1/scale"): "arithmetic on the config in its body; reads no study",
    ("GET", "/api/v1/projects"): "a listing: only the caller's projects",
    ("GET", "/api/v1/webhooks"): "a listing: only the caller's projects' webhooks",
    ("POST", "/api/v1/webhooks"): "creates in a project where the caller is an admin",
}
# Routes for the admin role of the token's own; a project's admin gets 403 there.
ADMIN_PREFIXES = ("/api/v1/tokens", "/api/v1/projects/", "/api/v1/projects")
# Server-sent event streams: the owner's call would never end, so only refusals are walked.
STREAMS = {"/api/v1/studies/{study_id}/events"}
OBJECT_PARAMS = {"study_id", "trial_id", "webhook_id", "delivery_id"}


def api_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if not isinstance(context.original_route, APIRoute) or not path.startswith("/api/v1"):
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                out.append((method, path))
    return sorted(set(out))


def is_admin_route(method: str, path: str) -> bool:
    if (method, path) in GLOBAL_ROUTES:
        return False
    return any(path == p or path.startswith(p) for p in ADMIN_PREFIXES)


def fill(path: str, side: Side) -> str:
    values = {
        "study_id": side.study_id,
        "trial_id": side.trial_id,
        "kind": "history",
        "project": side.project,
        "token_id": side.member_token_id,
        "webhook_id": side.webhook_id,
        "delivery_id": side.delivery_id,
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no value for path parameter {name!r} of {path}"
        return str(values[name])

    return re.sub(r"\{([^}]+)\}", value, path)


def body_for(method: str, path: str, side: Side) -> Any:
    """A body the route would accept from its owner, so that a route without the check
    would act (and the snapshot would show it), not just fail validation."""
    if method in ("GET", "DELETE"):
        return None
    bodies: dict[str, Any] = {
        "/api/v1/trials/{trial_id}/metrics": [{"name": "loss", "step": 9, "value": 0.1}],
        "/api/v1/trials/{trial_id}/logs": {"offset": 0, "text": "intruder\n"},
        "/api/v1/trials/{trial_id}/complete": {"value": 0.1},
        "/api/v1/trials/{trial_id}/heartbeat": {},
        "/api/v1/studies/{study_id}": {"state": "stopped", "name": "taken"},
        "/api/v1/studies/{study_id}/extend": {"more_trials": 5},
        "/api/v1/studies/{study_id}/warm_start": {"parents": [side.other_study_id]},
        "/api/v1/studies/{study_id}/promote": {"to": {"nodes": 2, "gpus_per_node": 8}},
        "/api/v1/trials/{trial_id}/scale": {"to": {"nodes": 2, "gpus_per_node": 8}},
        "/api/v1/webhooks/{webhook_id}": {"url": "http://127.0.0.1:9/taken", "active": False},
    }
    return bodies.get(path, {})


def call(client: TestClient, method: str, path: str, side: Side, token: str) -> Any:
    return client.request(
        method, fill(path, side), json=body_for(method, path, side), headers=bearer(token)
    )


def not_found_body(path: str, side: Side) -> dict[str, Any]:
    """What the route answers for a study or trial (or webhook) that does not exist."""
    if "{webhook_id}" in path:
        return {"detail": f"webhook {side.webhook_id} not found", "field": "webhook_id"}
    if "{study_id}" in path:
        return {"detail": f"study {side.study_id} not found", "field": "study_id"}
    return {"detail": f"trial {side.trial_id} not found", "field": "trial_id"}


def test_the_walk_covers_every_route(world: World) -> None:
    routes = api_routes(world.client.app)
    documented = {
        (method.upper(), path)
        for path, item in world.client.app.openapi()["paths"].items()
        for method in item
    }
    assert documented <= set(routes)
    unlisted = [
        (method, path)
        for method, path in routes
        if (method, path) not in GLOBAL_ROUTES
        and not is_admin_route(method, path)
        and not OBJECT_PARAMS & set(re.findall(r"\{([^}]+)\}", path))
    ]
    assert not unlisted, (
        f"routes that name no study or trial and are not known to be global: {unlisted}; "
        "make them check the caller's projects and list them in GLOBAL_ROUTES"
    )
    # The allowlist holds only routes that exist.
    assert set(GLOBAL_ROUTES) <= set(routes)


def test_another_projects_token_gets_404_everywhere(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    before = snapshot(world.database_url)
    walked = 0
    for method, path in api_routes(client.app):
        if (method, path) in GLOBAL_ROUTES or is_admin_route(method, path):
            continue
        # The other project's member, and its admin (deletes need the admin role).
        for token in (b.member, b.admin, b.viewer):
            response = call(client, method, path, a, token)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == not_found_body(path, a), (method, path)
        walked += 1
    assert walked >= 25
    assert snapshot(world.database_url) == before


def test_the_owner_reaches_every_read(world: World) -> None:
    """The walk above proves something only if the owner does not get 404 too."""
    client, a = world.client, world.a
    for method, path in api_routes(client.app):
        if method != "GET" or path in STREAMS or (method, path) in GLOBAL_ROUTES:
            continue
        if is_admin_route(method, path):
            continue
        response = call(client, method, path, a, a.viewer)
        # 409 where the study is of the wrong kind for the read (a population of a random
        # search): past the check, which is what this shows.
        assert response.status_code not in (401, 403, 404), (method, path, response.text)


def test_admin_routes_need_the_tokens_own_admin_role(world: World) -> None:
    client, a = world.client, world.a
    for method, path in api_routes(client.app):
        if not is_admin_route(method, path):
            continue
        response = call(client, method, path, a, a.admin)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["field"] == "authorization"


def test_a_viewer_reads_but_never_writes(world: World) -> None:
    client, a = world.client, world.a
    before = snapshot(world.database_url)
    for method, path in api_routes(client.app):
        if method == "GET" or (method, path) in GLOBAL_ROUTES or is_admin_route(method, path):
            continue
        response = call(client, method, path, a, a.viewer)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["field"] == "authorization"
    assert snapshot(world.database_url) == before


def test_a_member_deletes_nothing_a_project_admin_does(world: World) -> None:
    client, a = world.client, world.a
    study = f"/api/v1/studies/{a.other_study_id}"
    assert client.delete(study, headers=bearer(a.member)).status_code == 403
    assert client.delete(study, headers=bearer(world.b.admin)).status_code == 404
    assert client.delete(study, headers=bearer(a.admin)).status_code == 204
    assert client.get(study, headers=bearer(ADMIN_SECRET)).status_code == 404


@pytest.mark.parametrize("missing", ["study", "trial"])
def test_a_missing_object_and_a_hidden_one_answer_alike(world: World, missing: str) -> None:
    """No existence oracle: another project's study is indistinguishable from none."""
    client, a, b = world.client, world.a, world.b
    hidden = a.study_id if missing == "study" else a.trial_id
    absent = 10_000_000
    path = "/api/v1/studies/{}" if missing == "study" else "/api/v1/trials/{}"
    seen = client.get(path.format(hidden), headers=bearer(b.member))
    gone = client.get(path.format(absent), headers=bearer(b.member))
    assert seen.status_code == gone.status_code == 404
    assert seen.json()["field"] == gone.json()["field"]
    assert seen.json()["detail"].replace(str(hidden), "N") == gone.json()["detail"].replace(
        str(absent), "N"
    )


@pytest.mark.parametrize("raw", ["²", "-1", "99999999999999999999", "1e3", "%20"])
def test_odd_ids_never_reach_a_server_error(world: World, raw: str) -> None:
    """The guard reads path values before FastAPI validates them."""
    for token in (world.b.member, ADMIN_SECRET):
        for path in (f"/api/v1/studies/{raw}", f"/api/v1/trials/{raw}/logs"):
            response = world.client.get(path, headers=bearer(token))
            assert response.status_code in (404, 422), (path, response.text)


def test_webhooks_are_managed_by_a_projects_admin(world: World) -> None:
    """Webhooks send a project's data off the machine: its admin manages them, a member
    may not, a viewer reads the log; a listing shows only the caller's projects."""
    client, a, b = world.client, world.a, world.b
    body = {"url": "http://127.0.0.1:9/x", "project": a.project}
    refused = client.post("/api/v1/webhooks", json=body, headers=bearer(a.member))
    assert refused.status_code == 403 and refused.json()["field"] == "authorization"
    hidden = client.post("/api/v1/webhooks", json=body, headers=bearer(b.admin))
    assert hidden.status_code == 404 and hidden.json()["field"] == "project"
    scoped = {"url": "http://127.0.0.1:9/x", "study_id": a.study_id}
    assert client.post("/api/v1/webhooks", json=scoped, headers=bearer(b.admin)).json() == {
        "detail": f"study {a.study_id} not found",
        "field": "study_id",
    }
    made = client.post("/api/v1/webhooks", json=scoped, headers=bearer(a.admin))
    assert made.status_code == 201 and made.json()["project"] == a.project
    path = f"/api/v1/webhooks/{made.json()['id']}"
    assert client.patch(path, json={"active": False}, headers=bearer(a.member)).status_code == 403
    assert client.get(f"{path}/deliveries", headers=bearer(a.viewer)).status_code == 200
    assert client.get(path, headers=bearer(a.viewer)).json()["secret_hint"]
    seen = client.get("/api/v1/webhooks", headers=bearer(b.viewer)).json()["items"]
    assert [h["id"] for h in seen] == [b.webhook_id]
    assert client.delete(path, headers=bearer(a.admin)).status_code == 204
