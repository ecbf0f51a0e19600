from __future__ import annotations

import os

import pytest

from app.cli import build_parser, main


@pytest.fixture(autouse=True)
def _restore_env():
    # `tunelab worker` exports its broker for Celery; keep it out of later tests.
    saved = {k: os.environ.get(k) for k in ("TUNELAB_BROKER_URL", "TUNELAB_API_URL")}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_worker_needs_a_broker(monkeypatch, capsys):
    monkeypatch.delenv("TUNELAB_BROKER_URL", raising=False)
    assert main(["worker", "--slots", "2"]) == 2
    assert "--broker" in capsys.readouterr().err


def test_worker_options_parse():
    args = build_parser().parse_args(
        [
            "worker",
            "--broker",
            "redis://h:6379/0",
            "--gpus",
            "0,1",
            "--gpus-per-trial",
            "2",
            "--queues",
            "gpu2",
        ]
    )
    assert (args.broker, args.gpus, args.gpus_per_trial, args.queues) == (
        "redis://h:6379/0",
        "0,1",
        2,
        "gpu2",
    )


def test_too_few_gpus_for_a_trial_is_an_error(monkeypatch, capsys):
    assert (
        main(
            ["worker", "--broker", "redis://127.0.0.1:1/0", "--gpus", "0", "--gpus-per-trial", "2"]
        )
        == 2
    )
    assert "cannot hold" in capsys.readouterr().err
