from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from tests.client.live import patient_live_server

STUDY_YAML = """
name: cli study
objective: {metric: loss, direction: minimize}
space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, scale: log, role: learning_rate}
  batch: {type: int, low: 8, high: 32, role: per_device_batch_size}
  data_fraction: {type: fixed, value: 0.01}
limits: {max_trials: 6}
tags:
  world: {nodes: 2, gpus_per_node: 8}
"""


@pytest.fixture
def server_url(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    with patient_live_server(sqlite_url, tmp_path) as url:
        yield url


def test_study_commands_against_a_real_server(server_url, tmp_path, capsys):
    from tunelab.client import Client

    spec = tmp_path / "study.yaml"
    spec.write_text(STUDY_YAML)
    assert main(["study", "create", "-f", str(spec), "--url", server_url]) == 0
    assert "created study 1" in capsys.readouterr().out

    with Client(server_url) as client:
        study = client.study(1)
        for value in (0.5, 0.2, 0.9, 0.4, 0.3, 0.6):
            trial = study.ask()
            trial.report(0, loss=value)
            client.request(
                "POST", f"/trials/{trial.id}/logs", json={"offset": 0, "text": f"loss {value}\n"}
            )
            trial.complete()
        best = study.best_trial()

    assert main(["study", "list", "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert "cli study" in out and "completed" in out

    assert main(["study", "best", "1", "--json", "--url", server_url]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["value"] == 0.2 and answer["trial_id"] == best.id

    assert main(["trial", "logs", str(best.id), "--url", server_url]) == 0
    assert capsys.readouterr().out == "loss 0.2\n"
    assert main(["trial", "logs", str(best.id), "-f", "--url", server_url]) == 0
    assert capsys.readouterr().out == "loss 0.2\n"

    assert main(["study", "watch", "1", "--interval", "0.1", "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert "6/6" in out and "completed" in out

    assert main(["scale", "--trial", str(best.id), "--to", "4x8", "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert "world size: 2 x 8 = 16 -> 4 x 8 = 32" in out
    assert (
        main(
            [
                "scale",
                "--param",
                "lr=5e-5",
                "--param",
                "batch_size=22",
                "--from",
                "2x8",
                "--to",
                "4x8",
                "--json",
                "--url",
                server_url,
            ]
        )
        == 0
    )
    scaled = json.loads(capsys.readouterr().out)
    assert scaled["params"]["lr"] == pytest.approx(1e-4) and scaled["roles_inferred"] is True

    assert (
        main(
            [
                "study",
                "promote",
                "1",
                "--to",
                "4x8",
                "--top-k",
                "3",
                "--set",
                "data_fraction=1.0",
                "--url",
                server_url,
            ]
        )
        == 0
    )
    assert "created study 2" in capsys.readouterr().out and True
    assert main(["study", "importance", "1", "--url", server_url]) == 0
    assert "lr" in capsys.readouterr().out

    assert main(["study", "best", "999", "--url", server_url]) == 1
    assert "study 999 not found" in capsys.readouterr().err
