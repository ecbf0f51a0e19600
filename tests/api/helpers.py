"""Small HTTP helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.fixtures.studies import study_body

API = "/api/v1"


def create_study(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{API}/studies", json=study_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def ask(client: TestClient, study_id: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if body is None:
        response = client.post(f"{API}/studies/{study_id}/trials")
    else:
        response = client.post(f"{API}/studies/{study_id}/trials", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def report(client: TestClient, trial_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"{API}/trials/{trial_id}/metrics", json=points)
    assert response.status_code == 200, response.text
    return response.json()


def tell(client: TestClient, trial_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/trials/{trial_id}/complete", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def get_study(client: TestClient, study_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/studies/{study_id}")
    assert response.status_code == 200, response.text
    return response.json()


def run_trial(client: TestClient, study_id: int, value: float) -> dict[str, Any]:
    trial = ask(client, study_id)
    return tell(client, trial["id"], value=value)
