from __future__ import annotations

from tests.fixtures.studies import study_body


def _execution(**overrides):
    spec = {
        "command": ["python", "train.py"],
        "metric_definitions": [
            {"name": "loss", "regex": r"epoch (?P<step>\d+) loss=(?P<value>\S+)"}
        ],
    }
    spec.update(overrides)
    return spec


def test_execution_is_stored_with_defaults(client):
    created = client.post(
        "/api/v1/studies", json=study_body(execution=_execution(gpus_per_trial=1))
    )
    assert created.status_code == 201, created.text
    execution = created.json()["execution"]
    assert execution["args"] == "flags" and execution["gpus_per_trial"] == 1
    assert execution["metric_definitions"][0]["name"] == "loss"


def test_a_bad_regex_is_a_422_naming_it(client):
    bad = _execution(
        metric_definitions=[
            {"name": "ok", "regex": r"(?P<value>\d+)"},
            {"name": "bad", "regex": r"(?P<value>\d+"},
        ]
    )
    response = client.post("/api/v1/studies", json=study_body(execution=bad))
    assert response.status_code == 422
    assert response.json()["field"] == "execution.metric_definitions.1.regex"


def test_backreferences_are_refused(client):
    # RE2 has none: they are what makes backtracking engines exponential.
    bad = _execution(metric_definitions=[{"name": "x", "regex": r"(a)\1(?P<value>\d)"}])
    response = client.post("/api/v1/studies", json=study_body(execution=bad))
    assert response.status_code == 422
    assert response.json()["field"] == "execution.metric_definitions.0.regex"


def test_a_regex_needs_a_value_group(client):
    bad = _execution(metric_definitions=[{"name": "x", "regex": r"(\d+) (\d+)"}])
    response = client.post("/api/v1/studies", json=study_body(execution=bad))
    assert response.status_code == 422


def test_command_must_be_a_list(client):
    response = client.post(
        "/api/v1/studies", json=study_body(execution={"command": "python train.py"})
    )
    assert response.status_code == 422
    assert response.json()["field"].startswith("execution.command")
