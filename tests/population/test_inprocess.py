"""PBT through the in-process executor: real processes, real checkpoint copies, replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import main
from tests.population.helpers import (
    check_population_run,
    check_refused_without_checkpoints,
    pbt_study,
)
from tests.worker.conftest import thread_server
from tunelab.client import Client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    tmp_path = tmp_path_factory.mktemp("pbt")
    with thread_server(f"sqlite:///{tmp_path / 'tunelab.db'}", tmp_path, run_trials=True) as url:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=10) as client:
            yield client, tmp_path / "checkpoints"


def test_a_study_without_checkpoints_is_refused(server):
    check_refused_without_checkpoints(server[0])


def test_members_exploit_with_a_copy_of_the_donors_checkpoint_then_replay(server, capsys):
    api, root = server
    study_id = check_population_run(api, root, pbt_study())
    url = str(api.base_url).removesuffix("/api/v1").removesuffix("/api/v1/")

    # The client: each trial's schedule in dataframe(), the values in force in curves().
    with Client(url) as client:
        study = client.study(study_id)
        frame = study.dataframe()
        population = study.population()
        for member in population["members"]:
            [row] = frame[frame["trial_id"] == member["trial_id"]]["schedule"].tolist()
            assert row == member["schedule"]
        curves = study.curves()
        member = max(population["members"], key=lambda m: len(m["schedule"]))
        mine = curves[curves["trial_id"] == member["trial_id"]].sort_values("step")
        for step, params in zip(mine["step"], mine["params"], strict=True):
            expected = [e for e in member["schedule"] if e["step"] < step][-1]["params"]
            assert params == expected

    # The CLI queues a replay of a chosen member.
    assert (
        main(["study", "replay", str(study_id), "--trial", str(member["trial_id"]), "--url", url])
        == 0
    )
    assert f"replays trial {member['number']}'s schedule" in capsys.readouterr().out


def test_pb2_members_exploit_too(server):
    api, root = server
    body = pbt_study("pb2")
    body["strategy"] = {**body["strategy"], "name": "pb2"}
    check_population_run(api, root, body)
