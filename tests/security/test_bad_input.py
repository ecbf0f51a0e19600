"""NaN/inf metrics, oversized bodies, space limits, and a field named in every 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.session import Database
from app.engine.space import MAX_CHOICES, MAX_NAME_LENGTH, MAX_PARAMETERS
from app.main import create_app
from app.settings import Settings
from tests.fixtures.studies import study_body


def _study(client: TestClient, **overrides) -> int:
    response = client.post("/api/v1/studies", json=study_body(**overrides))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _run(
    client: TestClient, sid: int, values: list[float | str], final: dict | None = None
) -> dict:
    trial = client.post(f"/api/v1/studies/{sid}/trials").json()
    points = [{"name": "loss", "step": i, "value": v} for i, v in enumerate(values)]
    assert client.post(f"/api/v1/trials/{trial['id']}/metrics", json=points).status_code == 200
    done = client.post(f"/api/v1/trials/{trial['id']}/complete", json=final or {})
    assert done.status_code == 200, done.text
    return done.json()


def test_nan_and_inf_points_are_stored_faithfully(client: TestClient) -> None:
    sid = _study(client)
    trial = client.post(f"/api/v1/studies/{sid}/trials").json()
    sent = ["NaN", "Infinity", "-Infinity", 1.5, -0.0, 1e308, 5e-324]
    points = [{"name": "loss", "step": i, "value": v} for i, v in enumerate(sent)]
    client.post(f"/api/v1/trials/{trial['id']}/metrics", json=points)
    # JSON's non-standard NaN literal is accepted as well.
    raw = (
        '[{"name": "acc", "step": 0, "value": NaN}, {"name": "acc", "step": 1, "value": Infinity}]'
    )
    response = client.post(
        f"/api/v1/trials/{trial['id']}/metrics",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    got = client.get(f"/api/v1/trials/{trial['id']}/metrics").json()["items"]
    values = {(p["name"], p["step"]): p["value"] for p in got}
    assert [values["loss", i] for i in range(len(sent))] == [
        "NaN",
        "Infinity",
        "-Infinity",
        1.5,
        -0.0,
        1e308,
        5e-324,
    ]
    assert values["acc", 0] == "NaN" and values["acc", 1] == "Infinity"


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_non_finite_values_are_never_best(client: TestClient, direction: str) -> None:
    sid = _study(client, objective={"metric": "loss", "direction": direction})
    for bad in ("NaN", "-Infinity", "Infinity"):
        done = _run(client, sid, [0.5, bad])
        assert done["value"] == bad
        assert client.get(f"/api/v1/studies/{sid}").json()["best_value"] is None
    finite = _run(client, sid, [0.25])
    study = client.get(f"/api/v1/studies/{sid}").json()
    assert study["best_value"] == 0.25 and study["best_trial_id"] == finite["id"]
    for bad in ("NaN", "-Infinity", "Infinity"):
        _run(client, sid, [0.1], final={"value": bad})
    study = client.get(f"/api/v1/studies/{sid}").json()
    assert study["best_value"] == 0.25
    rows = client.get(f"/api/v1/studies/{sid}/trials.csv", params={"format": "json"}).json()
    assert all(row["best_so_far"] in (None, 0.25) for row in rows)


def test_imported_non_finite_results_are_not_best(client: TestClient) -> None:
    sid = _study(client)
    params = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "adam", "epochs": 27}
    for value in ("NaN", "-Infinity"):
        response = client.post(
            f"/api/v1/studies/{sid}/trials",
            json={"params": params, "value": value, "state": "completed"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["value"] == value
    assert client.get(f"/api/v1/studies/{sid}").json()["best_value"] is None


def test_a_metric_step_must_be_finite(client: TestClient) -> None:
    sid = _study(client)
    trial = client.post(f"/api/v1/studies/{sid}/trials").json()
    response = client.post(
        f"/api/v1/trials/{trial['id']}/metrics", json=[{"name": "loss", "step": "NaN", "value": 1}]
    )
    assert response.status_code == 422 and response.json()["field"] == "0.step"


# Oversized bodies ------------------------------------------------------------------------


@pytest.fixture
def small_client(tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, max_body_bytes=2048)
    database = Database(sqlite_url)
    with TestClient(create_app(settings, database)) as client:
        yield client
    database.dispose()


def _assert_413(response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["field"] == "body"


def test_declared_oversized_body_is_413(small_client: TestClient) -> None:
    body = json.dumps(study_body(tags={"blob": "x" * 5000}))
    _assert_413(
        small_client.post(
            "/api/v1/studies", content=body, headers={"content-type": "application/json"}
        )
    )


def test_chunked_oversized_body_is_413(small_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'[{"name": "loss", "step": 0, "value": 1}'
        for step in range(1, 200):
            yield f', {{"name": "loss", "step": {step}, "value": 1}}'.encode()
        yield b"]"

    sid = _study(small_client)
    trial = small_client.post(f"/api/v1/studies/{sid}/trials").json()
    response = small_client.post(
        f"/api/v1/trials/{trial['id']}/metrics",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    _assert_413(response)
    # Nothing of the rejected batch was stored, and the server goes on serving.
    points = small_client.get(f"/api/v1/trials/{trial['id']}/metrics").json()["items"]
    assert points == []
    assert small_client.get("/api/v1/health").status_code == 200


def test_body_at_the_limit_is_accepted(small_client: TestClient) -> None:
    body = json.dumps(study_body()).encode()
    padded = body[:-1] + b" " * (2048 - len(body)) + b"}"
    assert len(padded) == 2048
    response = small_client.post(
        "/api/v1/studies", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


# Space limits ------------------------------------------------------------------------------


def _bad_study(client: TestClient, **overrides) -> dict:
    response = client.post("/api/v1/studies", json=study_body(**overrides))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] and body["detail"]
    return body


def test_too_many_parameters(client: TestClient) -> None:
    space = {f"p{i}": {"type": "float", "low": 0, "high": 1} for i in range(MAX_PARAMETERS + 1)}
    assert _bad_study(client, space=space)["field"] == "space"
    space.pop(f"p{MAX_PARAMETERS}")
    assert client.post("/api/v1/studies", json=study_body(space=space)).status_code == 201


def test_too_many_choices(client: TestClient) -> None:
    choices = list(range(MAX_CHOICES + 1))
    body = _bad_study(client, space={"c": {"type": "categorical", "choices": choices}})
    assert body["field"] == "space.c.choices"
    ok = study_body(space={"c": {"type": "categorical", "choices": choices[:-1]}})
    assert client.post("/api/v1/studies", json=ok).status_code == 201


def test_parameter_name_length_and_charset(client: TestClient) -> None:
    long_name = "p" * (MAX_NAME_LENGTH + 1)
    body = _bad_study(client, space={long_name: {"type": "float", "low": 0, "high": 1}})
    assert body["field"] == f"space.{long_name}"
    body = _bad_study(client, space={"a b": {"type": "float", "low": 0, "high": 1}})
    assert body["field"] == "space.a b"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"objective": {"metric": "m" * 201, "direction": "minimize"}}, "objective.metric"),
        ({"objective": {"metric": "loss", "direction": "sideways"}}, "objective.direction"),
        ({"space": {}}, "space"),
        ({"space": {"x": {"type": "float", "low": 1, "high": 0}}}, "space.x.low"),
        ({"space": {"x": {"type": "float", "low": 0, "high": "NaN"}}}, "space.x.high"),
        ({"space": {"x": {"type": "wat"}}}, "space.x.type"),
        ({"limits": {"max_trials": 0}}, "limits.max_trials"),
        ({"strategy": {"name": "random", "seed": -1}}, "strategy.seed"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_every_study_error_names_its_field(client: TestClient, overrides: dict, field: str) -> None:
    assert _bad_study(client, **overrides)["field"] == field


def test_metric_name_length(client: TestClient) -> None:
    sid = _study(client)
    trial = client.post(f"/api/v1/studies/{sid}/trials").json()
    response = client.post(
        f"/api/v1/trials/{trial['id']}/metrics", json=[{"name": "m" * 201, "step": 0, "value": 1}]
    )
    assert response.status_code == 422 and response.json()["field"] == "0.name"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [
        ("GET", "/api/v1/studies/999", {}, 404, "study_id"),
        ("GET", "/api/v1/trials/999", {}, 404, "trial_id"),
        ("GET", "/api/v1/studies/abc", {}, 422, "study_id"),
        ("GET", "/api/v1/studies", {"params": {"limit": 0}}, 422, "limit"),
        ("PUT", "/api/v1/studies", {}, 405, "method"),
        (
            "POST",
            "/api/v1/studies",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        ("POST", "/api/v1/trials/999/metrics", {"json": []}, 404, "trial_id"),
    ],
)
def test_errors_name_their_field(client: TestClient, method, path, kwargs, status, field) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"], body
    if field is not None:
        assert body["field"] == field
