"""The data-fraction example: nested shares of the data, and output the worker can parse."""

from __future__ import annotations

import importlib.util
import sys

import re2
import yaml

from tests.fixtures.services import ROOT

EXAMPLE = ROOT / "examples" / "data_fraction"


def _train():
    spec = importlib.util.spec_from_file_location("data_fraction_train", EXAMPLE / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_epochs_on_one_percent_and_streamed_fractions(capsys):
    train = _train()
    epochs = list(train.train(train.Config(data_fraction=0.01, epochs=2, n_samples=5000)))
    assert [e for e, _ in epochs] == [1, 2] and set(epochs[0][1]) == {
        "train_loss",
        "val_loss",
        "val_acc",
    }
    streamed = [f for f, _ in train.stream(train.Config(data_fraction=0.1, n_samples=5000))]
    assert streamed == [0.01, 0.03, 0.1]

    train.main(["--stream", "--data_fraction", "0.03", "--n_samples", "5000"])
    lines = capsys.readouterr().out.splitlines()
    spec = yaml.safe_load((EXAMPLE / "study_fidelity.yaml").read_text())
    pattern = re2.compile(spec["execution"]["metric_definitions"][0]["regex"])
    steps = [float(pattern.search(line).group("step")) for line in lines]
    assert steps == [0.01, 0.03]

    train.main(["--data_fraction", "0.01", "--epochs", "2.0", "--n_samples", "5000"])
    lines = capsys.readouterr().out.splitlines()
    spec = yaml.safe_load((EXAMPLE / "study.yaml").read_text())
    pattern = re2.compile(spec["execution"]["metric_definitions"][0]["regex"])
    assert [float(pattern.search(line).group("step")) for line in lines] == [1.0, 2.0]
