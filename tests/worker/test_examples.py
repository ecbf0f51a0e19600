"""The example study files are valid study bodies, and their regexes read their scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import re2
import yaml

from app.studies.schemas import StudyCreate
from worker.launch import MetricParser, build_argv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    ROOT / "examples" / name / "study.yaml"
    for name in ("sklearn_digits", "sdk_digits", "torch_gpu")
]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_study_files_are_valid(path: Path):
    body = StudyCreate.model_validate(yaml.safe_load(path.read_text()))
    assert body.execution is not None
    script = ROOT / body.execution.command[-1]
    assert script.exists()
    assert "tunelab" not in script.read_text() or path.parent.name == "sdk_digits"


@pytest.mark.slow
def test_the_sklearn_example_prints_lines_its_regexes_read():
    body = yaml.safe_load((ROOT / "examples/sklearn_digits/study.yaml").read_text())
    argv = build_argv(
        [sys.executable, str(ROOT / "examples/sklearn_digits/train.py")],
        "flags",
        {"lr": 0.01, "alpha": 1e-4, "hidden": 32, "batch_size": 64, "epochs": 3.0},
    )
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    parser = MetricParser.from_spec(body["execution"]["metric_definitions"])
    points = [p for line in out.splitlines() for p in parser.parse(line)]
    assert [(n, s) for n, s, _ in points if n == "val_acc"] == [
        ("val_acc", 1.0),
        ("val_acc", 2.0),
        ("val_acc", 3.0),
    ]
    printed = [float(v) for v in re2.findall(r"val_acc=([0-9.]+)", out)][:3]
    assert [v for n, _, v in points if n == "val_acc"] == printed
