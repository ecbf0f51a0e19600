"""Projects keep teams apart: listings, creation, follow-ups, imports and the live stream
show and take only the caller's projects; the default project keeps a single team's use
as it was."""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi.testclient import TestClient

from tests.fixtures.studies import study_body
from tests.projects.conftest import ADMIN_SECRET, API, World, bearer, make_token, snapshot


def _ids(client: TestClient, token: str, **params: Any) -> set[int]:
    response = client.get(f"{API}/studies", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return {s["id"] for s in body["items"]}


def test_listings_show_only_the_callers_projects(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    assert _ids(client, a.member) == {a.study_id, a.other_study_id}
    assert _ids(client, b.viewer) == {b.study_id, b.other_study_id}
    assert _ids(client, ADMIN_SECRET) >= {a.study_id, b.study_id}
    assert _ids(client, ADMIN_SECRET, project="alpha") == {a.study_id, a.other_study_id}
    # Naming a project one does not see is the same as naming none that exists.
    hidden = client.get(f"{API}/studies", params={"project": "alpha"}, headers=bearer(b.member))
    missing = client.get(f"{API}/studies", params={"project": "nope"}, headers=bearer(b.member))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["field"] == "project"
    projects = client.get(f"{API}/projects", headers=bearer(b.member)).json()["items"]
    assert [(p["name"], p["role"], p["n_studies"]) for p in projects] == [("beta", "member", 2)]
    everything = client.get(f"{API}/projects", headers=bearer(ADMIN_SECRET)).json()["items"]
    assert [p["name"] for p in everything] == ["default", "alpha", "beta"]


def test_creating_a_study_needs_the_member_role_in_its_project(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    before = snapshot(world.database_url)
    refused = [
        (b.member, {"project": "alpha"}, 404),
        (b.member, {"project": a.project_id}, 404),
        (a.viewer, {"project": "alpha"}, 403),
        (a.member, {"project": "nope"}, 404),
        (b.member, {"parent_study_id": a.study_id}, 422),
    ]
    for token, extra, status in refused:
        response = client.post(f"{API}/studies", json=study_body(**extra), headers=bearer(token))
        assert response.status_code == status, (extra, response.text)
        assert response.json()["field"] in ("project", "parent_study_id", "authorization")
    assert snapshot(world.database_url) == before
    # A token of one project needs not name it.
    made = client.post(f"{API}/studies", json=study_body(), headers=bearer(b.member))
    assert made.status_code == 201 and made.json()["project_id"] == b.project_id
    by_id = client.post(
        f"{API}/studies", json=study_body(project=a.project_id), headers=bearer(a.member)
    )
    assert by_id.status_code == 201 and by_id.json()["project_id"] == a.project_id


def test_single_team_use_is_unchanged(project_client: TestClient) -> None:
    """Tokens with a role of their own, and clients that never name a project."""
    client = project_client
    admin = bearer(ADMIN_SECRET)
    member = client.post(f"{API}/tokens", json={"role": "member"}, headers=admin).json()
    assert member["role"] == "member" and member["projects"] == []
    study = client.post(f"{API}/studies", json=study_body(), headers=bearer(member["token"]))
    assert study.status_code == 201 and study.json()["project_id"] == 0
    assert client.get(f"{API}/projects", headers=admin).json()["items"][0]["name"] == "default"
    viewer = client.post(f"{API}/tokens", json={"role": "viewer"}, headers=admin).json()["token"]
    assert _ids(client, viewer) == {study.json()["id"]}


def test_follow_ups_stay_in_their_project_and_take_no_foreign_parent(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    extended = client.post(
        f"{API}/studies/{a.study_id}/extend",
        json={"more_trials": 3, "space": study_body()["space"]},
        headers=bearer(a.member),
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["study"]["project_id"] == a.project_id
    before = snapshot(world.database_url)
    foreign = client.post(
        f"{API}/studies/{b.study_id}/warm_start",
        json={"parents": [b.other_study_id, a.study_id]},
        headers=bearer(b.member),
    )
    assert foreign.status_code == 422
    assert foreign.json() == {"detail": f"study {a.study_id} not found", "field": "parents.1"}
    assert snapshot(world.database_url) == before


def test_imports_land_in_a_project_of_the_callers(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    document = client.get(f"{API}/studies/{a.study_id}/export", headers=bearer(a.member)).json()
    # An export names no project: the importing caller chooses, and needs the right there.
    assert "project_id" not in document["study"]
    refused = client.post(
        f"{API}/studies/import",
        params={"project": "alpha"},
        json=document,
        headers=bearer(b.member),
    )
    assert refused.status_code == 404 and refused.json()["field"] == "project"
    made = client.post(f"{API}/studies/import", json=document, headers=bearer(b.member))
    assert made.status_code == 201, made.text
    assert made.json()["project_id"] == b.project_id
    lines = "".join(
        json.dumps(line) + "\n"
        for line in [
            {**{k: v for k, v in document.items() if k not in ("trials", "events")}},
            {"end": {"trials": 0, "metrics": 0, "logs": 0, "events": 0}},
        ]
    )
    streamed = client.post(
        f"{API}/studies/import/stream",
        params={"project": "alpha"},
        content=lines,
        headers={**bearer(b.member), "Content-Type": "application/x-ndjson"},
    )
    assert streamed.status_code == 404, streamed.text


def test_membership_changes_take_effect(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    admin = bearer(ADMIN_SECRET)
    study = f"{API}/studies/{a.study_id}"
    assert client.get(study, headers=bearer(b.member)).status_code == 404
    granted = client.put(
        f"{API}/projects/alpha/members/{b.member_token_id}", json={"role": "viewer"}, headers=admin
    )
    assert granted.status_code == 200, granted.text
    assert client.get(study, headers=bearer(b.member)).status_code == 200
    assert client.patch(study, json={"name": "x"}, headers=bearer(b.member)).status_code == 403
    members = client.get(f"{API}/projects/alpha/members", headers=admin).json()["items"]
    assert {(m["token_name"], m["role"]) for m in members} >= {("beta-member", "viewer")}
    gone = client.delete(f"{API}/projects/alpha/members/{b.member_token_id}", headers=admin)
    assert gone.status_code == 204
    assert client.get(study, headers=bearer(b.member)).status_code == 404


def test_projects_are_managed_by_an_admin(world: World) -> None:
    client = world.client
    admin = bearer(ADMIN_SECRET)
    assert client.post(f"{API}/projects", json={"name": "gamma"}, headers=admin).status_code == 201
    dup = client.post(f"{API}/projects", json={"name": "gamma"}, headers=admin)
    assert dup.status_code == 409 and dup.json()["field"] == "name"
    bad = client.post(f"{API}/projects", json={"name": "12"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    busy = client.delete(f"{API}/projects/alpha", headers=admin)
    assert busy.status_code == 409 and busy.json()["field"] == "project"
    assert client.delete(f"{API}/projects/default", headers=admin).status_code == 409
    assert client.delete(f"{API}/projects/gamma", headers=admin).status_code == 204
    assert client.delete(f"{API}/projects/gamma", headers=admin).status_code == 404


def test_the_all_studies_stream_shows_only_the_callers_projects(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with client.stream("GET", f"{API}/events", headers=bearer(b.viewer)) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: ready"):
                    ready.set()
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    seen.append(data)
                    # Changes go out in commit order: B's comes after A's two.
                    if data.get("study_id") == b.study_id:
                        done.set()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    for name in ("secret-1", "secret-2"):
        response = client.patch(
            f"{API}/studies/{a.study_id}", json={"name": name}, headers=bearer(a.member)
        )
        assert response.status_code == 200
    response = client.patch(
        f"{API}/studies/{b.study_id}", json={"name": "marker"}, headers=bearer(b.member)
    )
    assert response.status_code == 200
    assert done.wait(10), seen
    assert {d["study_id"] for d in seen if "study_id" in d} <= {b.study_id, None}


def test_a_token_for_a_project_from_the_api(world: World) -> None:
    client, a = world.client, world.a
    token, _ = make_token(client, "alpha", "viewer", "reader")
    me = client.get(f"{API}/auth/me", headers=bearer(token)).json()
    assert me["role"] == "none"
    assert me["projects"] == [{"project_id": a.project_id, "role": "viewer"}]
    unknown = client.post(
        f"{API}/tokens",
        json={"role": "member", "project": "nope"},
        headers=bearer(ADMIN_SECRET),
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "project"


def test_lineage_leaves_out_studies_of_other_projects(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    admin = bearer(ADMIN_SECRET)
    child = client.post(
        f"{API}/studies",
        json=study_body(project="beta", parent_study_id=a.study_id),
        headers=admin,
    ).json()
    full = client.get(f"{API}/studies/{child['id']}/lineage", headers=admin).json()
    assert full["parent_study_id"] == a.study_id and full["ancestors"]
    seen = client.get(f"{API}/studies/{child['id']}/lineage", headers=bearer(b.member)).json()
    assert seen["parent_study_id"] is None and seen["ancestors"] == []
    parent = client.get(f"{API}/studies/{a.study_id}/lineage", headers=bearer(a.member)).json()
    assert parent["children"] == []
