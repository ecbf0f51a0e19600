"""Inactive conditional parameters never reach the trial's command line: no `--name`
flag, and in template mode no literal `{name}` (the word and its option word go)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.worker.conftest import thread_server
from worker.api import ApiClient
from worker.launch import build_argv
from worker.runner import RunnerConfig, Slot, run_next

SCRIPT = """
import json, os, sys
print("argv=" + json.dumps(sys.argv[1:]))
print("params=" + os.environ["TUNELAB_PARAMS"])
print("epoch 1 loss=0.5")
"""


def test_template_words_of_inactive_parameters_are_left_out():
    command = ["{python}", "t.py", "--opt", "{optimizer}", "--momentum", "{momentum}",
               "--damp={dampening}", "-v", "--lr={lr}", "{json}"]  # fmt: skip
    values = {"optimizer": "adam", "lr": 0.1}
    argv = build_argv(command, "template", values, inactive={"momentum", "dampening"})
    # `{json}` names no parameter of the space: it stays as written.
    assert argv[1:] == ["t.py", "--opt", "adam", "-v", "--lr=0.1", "{json}"]
    active = build_argv(command, "template", {**values, "momentum": 0.9, "dampening": 0.0})
    assert active[1:] == ["t.py", "--opt", "adam", "--momentum", "0.9", "--damp=0", "-v",
                          "--lr=0.1", "{json}"]  # fmt: skip
    flags = build_argv(["train.py"], "flags", values, inactive={"momentum"})
    assert flags == ["train.py", "--optimizer", "adam", "--lr", "0.1"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("conditional-runner")
    with thread_server(f"sqlite:///{data / 'tunelab.db'}", data, run_trials=False) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("args", ["template", "flags"])
def test_a_real_trial_gets_only_its_active_parameters(server, tmp_path: Path, args: str):
    script = tmp_path / "echo.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script)]
    if args == "template":
        command += ["--optimizer", "{optimizer}", "--momentum", "{momentum}", "--beta1={beta1}"]
    body = {
        "name": f"conditional {args}",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
            "momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.99,
                "condition": {"optimizer": ["sgd"]},
            },
            "beta1": {
                "type": "float",
                "low": 0.8,
                "high": 0.99,
                "condition": {"optimizer": ["adam"]},
            },
        },  # fmt: skip
        "strategy": {"name": "grid", "seed": 1},
        "limits": {"max_trials": 10, "max_parallel_trials": 1},
        "execution": {
            "command": command,
            "args": args,
            "metric_definitions": [
                {"name": "loss", "regex": r"epoch (?P<step>\d+) loss=(?P<value>\S+)"}
            ],
        },
    }
    with httpx.Client(base_url=f"{server}/api/v1", timeout=10) as api:
        created = api.post("/studies", json=body)
        assert created.status_code == 201, created.text
        study_id = created.json()["id"]
        seen = set()
        # One queued trial per branch, each run by the runner as a worker would.
        for _ in range(2):
            queued = {"sgd": {"momentum": 0.9}, "adam": {"beta1": 0.9}}
            optimizer = "sgd" if "sgd" not in seen else "adam"
            params = {"optimizer": optimizer, **queued[optimizer]}
            assert (
                api.post(
                    f"/studies/{study_id}/trials", json={"params": params, "queue": True}
                ).status_code
                == 201
            )
            with ApiClient(server) as client:
                outcome = run_next(
                    client,
                    study_id,
                    Slot("t:0"),
                    RunnerConfig(api_url=server, checkpoint_root=tmp_path),
                )
            assert outcome is not None and outcome.state == "completed"
            text = api.get(f"/trials/{outcome.trial_id}/logs").json()["text"]
            argv = json.loads(text.split("argv=", 1)[1].splitlines()[0])
            env = json.loads(text.split("params=", 1)[1].splitlines()[0])
            assert env == params
            assert not any("{" in word for word in argv), argv
            inactive = "beta1" if optimizer == "sgd" else "momentum"
            assert not any(inactive in word for word in argv), argv
            assert any(word.endswith("0.9") for word in argv), argv
            seen.add(optimizer)
