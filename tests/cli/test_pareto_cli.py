"""Several objectives from the client and the CLI against a real server: `tell` with a
list, `dataframe()` with `is_pareto`, `tunelab study best` printing the Pareto set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from tests.client.live import patient_live_server


@pytest.fixture
def server_url(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    with patient_live_server(sqlite_url, tmp_path) as url:
        yield url


def test_pareto_set_through_client_dataframe_and_cli(server_url, capsys):
    from tunelab.client import Client

    with Client(server_url) as client:
        study = client.create_study(
            name="two objectives",
            objectives=[
                {"metric": "acc", "direction": "maximize"},
                {"metric": "latency_ms", "direction": "minimize"},
            ],
            constraints=[{"metric": "memory_gib", "op": "<=", "value": 24}],
            space={"x": {"type": "float", "low": 0, "high": 1}},
            strategy={"name": "nsga2", "seed": 1},
            limits={"max_trials": 10},
        )
        told = []
        for acc, latency, memory in [
            (0.9, 30.0, 10.0),
            (0.8, 10.0, 10.0),
            (0.7, 20.0, 10.0),  # dominated
            (0.99, 5.0, 40.0),  # dominates all, but breaks the memory limit
        ]:
            trial = study.ask()
            trial.report(1, memory_gib=memory)
            told.append(trial.complete([acc, latency]))
        assert told[0].values == [0.9, 30.0]
        frame = study.dataframe()
        assert frame["is_pareto"].tolist() == [True, True, False, False]
        assert frame["feasible"].tolist() == [True, True, True, False]
        assert frame["values_latency_ms"].tolist() == [30.0, 10.0, 20.0, 5.0]
        assert [t.id for t in study.pareto_trials()] == [told[0].id, told[1].id]
        assert len(study.hypervolume_history()) == 4

    assert main(["study", "best", str(study.id), "--json", "--url", server_url]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [t["values"] for t in answer["trials"]] == [[0.9, 30.0], [0.8, 10.0]]
    assert answer["reference_point_source"] == "derived"
    assert main(["study", "best", str(study.id), "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert "Pareto set: 2 trials" in out and "latency_ms" in out
