"""A real server and the studies the framework tests train against: one whose median
rule stops a worse trial at its first report, one whose ASHA pauses it there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.live import patient_live_server
from tunelab.client import Client, Study

# Keras reads its backend once, when first imported: the one installed beside it here.
os.environ.setdefault("KERAS_BACKEND", "torch")

METRIC = "val_loss"
SPACE = {"lr": {"type": "float", "low": 0.001, "high": 0.1, "scale": "log"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("integrations-server")
    with patient_live_server(f"sqlite:///{data / 'tunelab.db'}", data) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as client:
        yield client


@pytest.fixture(autouse=True)
def _local_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints of trials asked outside a launched process go under the test's folder;
    no variable of an enclosing trial leaks in."""
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(tmp_path))
    for name in ("TUNELAB_TRIAL_ID", "TUNELAB_API_URL", "TUNELAB_STUDY_ID", "TUNELAB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def stopping_study(client: Client, metric: str = METRIC) -> Study:
    """A median rule with one finished trial at 0 from step 1 to 50: any trial that
    reports more at its first step is stopped there."""
    study = client.create_study(
        name="stops early",
        objective={"metric": metric, "direction": "minimize"},
        space=SPACE,
        early_stopping={"rule": "median", "min_trials": 1},
        limits={"max_trials": 20, "max_parallel_trials": 4},
    )
    study.add_result(
        {"lr": 0.01},
        0.0,
        metrics=[{"name": metric, "step": k, "value": 0.0} for k in range(1, 51)],
    )
    return study


def pausing_study(client: Client, metric: str = METRIC) -> Study:
    """ASHA in pause mode over epochs 1, 3, 9: the first trial to report at epoch 1 is
    paused there, and resumed (with 3 epochs) once two more have been paused."""
    return client.create_study(
        name="pauses",
        objective={"metric": metric, "direction": "minimize"},
        space=SPACE,
        strategy={"name": "asha", "mode": "pause", "seed": 1},
        fidelity={"param": "epochs", "min": 1, "max": 9},
        limits={"max_trials": 20, "max_parallel_trials": 4},
    )


def pause_two_more(study: Study, metric: str = METRIC) -> None:
    """Two worse trials paused at epoch 1: the next ask resumes the best paused one."""
    for value in (5.0, 6.0):
        trial = study.ask()
        assert trial.report(1, {metric: value}) == "pause"


def launched_env(monkeypatch: pytest.MonkeyPatch, server: str, trial: Any, folder: Path) -> None:
    """What the runner gives a trial's process (worker/launch.py build_env)."""
    import json

    monkeypatch.setenv("TUNELAB_TRIAL_ID", str(trial.id))
    monkeypatch.setenv("TUNELAB_API_URL", server)
    monkeypatch.setenv("TUNELAB_PARAMS", json.dumps(trial.params))
    monkeypatch.setenv("TUNELAB_BUDGET", "" if trial.budget is None else str(trial.budget))
    monkeypatch.setenv("TUNELAB_CHECKPOINT_DIR", str(folder))
