"""Studies that run commands: who may create them, and what their spec may contain."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.security.execution import ExecutionError, check_env, check_working_dir
from app.settings import get_settings
from tests.auth.conftest import Tokens, bearer
from tests.fixtures.studies import study_body


def _execution(**overrides) -> dict:
    spec = {
        "command": ["python", "train.py"],
        "metric_definitions": [{"name": "loss", "regex": r"loss=(?P<value>[0-9.eE+-]+)"}],
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("TUNELAB_WORKDIR_ROOTS", str(allowed))
    get_settings.cache_clear()
    yield allowed
    get_settings.cache_clear()


def _create(client: TestClient, execution: dict, headers: dict | None = None):
    return client.post(
        "/api/v1/studies", json=study_body(execution=execution), headers=headers or {}
    )


def test_only_members_create_studies_that_run_commands(
    auth_client: TestClient, tokens: Tokens
) -> None:
    viewer = _create(auth_client, _execution(), bearer(tokens.viewer))
    assert viewer.status_code == 403
    assert _create(auth_client, _execution()).status_code == 401
    member = _create(auth_client, _execution(), bearer(tokens.member))
    assert member.status_code == 201, member.text


@pytest.mark.parametrize(
    "command",
    ["python train.py", [], ["python", ""], {"sh": "-c"}],
)
def test_the_command_is_an_argv_list(client: TestClient, command) -> None:
    response = _create(client, _execution(command=command))
    assert response.status_code == 422
    assert response.json()["field"].startswith("execution.command")


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "TUNELAB_TOKEN",
        "lower",
        "1ABC",
        "A-B",
        "A B",
        "",
        "NODE_OPTIONS",
    ],
)
def test_environment_names_are_allow_listed(client: TestClient, name: str) -> None:
    response = _create(client, _execution(env={name: "x"}))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "execution.env"
    assert repr(name) in body["detail"] or name in body["detail"]


def test_ordinary_environment_is_kept(client: TestClient) -> None:
    env = {"OMP_NUM_THREADS": "4", "WANDB_MODE": "offline", "_X1": ""}
    response = _create(client, _execution(env=env))
    assert response.status_code == 201, response.text
    assert response.json()["execution"]["env"] == env


def test_working_dir_is_confined_to_the_roots(
    client: TestClient, roots: Path, tmp_path: Path
) -> None:
    inside = roots / "project"
    inside.mkdir()
    assert _create(client, _execution(working_dir=str(inside))).status_code == 201
    assert _create(client, _execution(working_dir=str(roots))).status_code == 201
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    escape = roots / "escape"
    escape.symlink_to(outside)
    for bad in ["/etc", str(outside), str(roots / ".." / "elsewhere"), str(escape), "relative/dir"]:
        response = _create(client, _execution(working_dir=bad))
        assert response.status_code == 422, bad
        assert response.json()["field"] == "execution.working_dir"


@pytest.mark.parametrize("regex", ["(", "(?P<value>[0-9]+", "a{1001}{1001}", "(?<=x)y", r"(a)\1"])
def test_invalid_or_non_linear_regex_is_a_422(client: TestClient, regex: str) -> None:
    spec = _execution(metric_definitions=[{"name": "loss", "regex": regex}])
    response = _create(client, spec)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "execution.metric_definitions.0.regex"


def test_pathological_regex_runs_in_linear_time() -> None:
    import time

    import re2

    pattern = re2.compile(r"(a+)+$")
    started = time.monotonic()
    assert pattern.search("a" * 100_000 + "b") is None
    assert time.monotonic() - started < 1.0


def test_check_helpers_directly(tmp_path: Path) -> None:
    assert check_env({"A": "1"}) == {"A": "1"}
    with pytest.raises(ExecutionError):
        check_env({"A": "x\x00"})
    assert check_working_dir(str(tmp_path), [tmp_path]) == str(tmp_path)
    with pytest.raises(ExecutionError):
        check_working_dir(str(tmp_path.parent), [tmp_path])


def test_values_reach_argv_only_after_the_space_checked_them(client: TestClient) -> None:
    from worker.launch import build_argv

    sid = _create(client, _execution()).json()["id"]
    hostile = {
        "lr": 0.01,
        "momentum": 0.95,
        "batch_size": 32,
        "epochs": 27,
        "optimizer": "adam; rm -rf /",
    }
    response = client.post(f"/api/v1/studies/{sid}/trials", json={"params": hostile})
    assert response.status_code == 422 and response.json()["field"] == "params.optimizer"
    out_of_range = {**hostile, "optimizer": "adam", "lr": 10.0}
    response = client.post(f"/api/v1/studies/{sid}/trials", json={"params": out_of_range})
    assert response.status_code == 422 and response.json()["field"] == "params.lr"
    unknown = {**hostile, "optimizer": "adam", "--exec": "x"}
    response = client.post(f"/api/v1/studies/{sid}/trials", json={"params": unknown})
    assert response.status_code == 422 and response.json()["field"].startswith("params")
    # Whatever a value holds, it stays one argv word: there is no shell to parse it.
    argv = build_argv(["python", "train.py"], "flags", {"name": "$(id); `id` | x"})
    assert argv == ["python", "train.py", "--name", "$(id); `id` | x"]
    argv = build_argv(["python", "t.py", "--lr={lr}"], "template", {"lr": "1 2"})
    assert argv == ["python", "t.py", "--lr=1 2"]
