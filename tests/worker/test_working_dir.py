"""A worker checks `execution.working_dir` against its own roots before it launches a trial:
the server checked it against the server's roots, which need not be the worker's."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.worker.conftest import thread_server
from worker.api import ApiClient
from worker.launch import LaunchRefused, checked_working_dir
from worker.runner import RunnerConfig, Slot, run_next

pytestmark = pytest.mark.slow

# Writes a marker into its working folder: its absence proves the command never ran.
MARK = "import pathlib; pathlib.Path('launched').write_text('yes'); print('loss=1.5')"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("workdir")
    with thread_server(f"sqlite:///{data / 'tunelab.db'}", data, run_trials=False) as url:
        yield url


def _study(server: str, working_dir: Path) -> int:
    body = {
        "name": "working dir",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.5, "high": 5.0}},
        "limits": {"max_trials": 2},
        "execution": {
            "command": [sys.executable, "-c", MARK],
            "metric_definitions": [{"name": "loss", "regex": r"loss=(?P<value>\S+)"}],
            "working_dir": str(working_dir),
        },
    }
    # The server's roots (its defaults include the temp folder) accept the folder.
    response = httpx.post(f"{server}/api/v1/studies", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _run_one(server: str, study_id: int, checkpoints: Path) -> tuple[str, str]:
    with ApiClient(server) as client:
        outcome = run_next(
            client,
            study_id,
            Slot("test:0"),
            RunnerConfig(api_url=server, checkpoint_root=checkpoints),
        )
    assert outcome is not None
    trial = httpx.get(f"{server}/api/v1/trials/{outcome.trial_id}", timeout=10).json()
    return outcome.state, trial["error"] or ""


def test_a_working_dir_outside_the_workers_roots_fails_the_trial_unlaunched(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    worker_root = tmp_path / "worker-root"
    worker_root.mkdir()
    study_id = _study(server, project)

    monkeypatch.setenv("TUNELAB_WORKDIR_ROOTS", str(worker_root))
    state, error = _run_one(server, study_id, tmp_path / "checkpoints")
    assert state == "failed"
    assert "execution.working_dir" in error and str(project) in error, error
    assert not (project / "launched").exists()

    # The same study runs once the worker's roots allow the folder.
    monkeypatch.setenv("TUNELAB_WORKDIR_ROOTS", os.pathsep.join([str(worker_root), str(project)]))
    state, error = _run_one(server, study_id, tmp_path / "checkpoints")
    assert state == "completed", error
    assert (project / "launched").read_text() == "yes"


def test_the_check_resolves_symlinks_and_names_the_field(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    assert checked_working_dir({"working_dir": str(root / "in")}, [root]) == str(root / "in")
    assert checked_working_dir({}, [root]) is None
    for bad in [str(root / "escape"), str(outside), "relative"]:
        with pytest.raises(LaunchRefused, match=r"execution\.working_dir"):
            checked_working_dir({"working_dir": bad}, [root])
