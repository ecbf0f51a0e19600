"""The first-use findings: a concise server console, the interpreter placeholder, a study
whose every trial failed, one-point curves, and one reference page of defaults."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import build_parser
from app.cli import server as server_cli
from app.plots.builders.learning_curves import trial_curves
from app.plots.repository import Series
from tests.api.helpers import ask, create_study, get_study, tell
from worker.launch import build_argv

ROOT = Path(__file__).resolve().parents[2]


# --- the server console ---------------------------------------------------------------


def test_serve_has_the_access_log_off_unless_asked(monkeypatch, tmp_path):
    calls: list[dict[str, Any]] = []

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv("TUNELAB_AUTH", "off")
    for extra, expected in (([], False), (["--access-log"], True)):
        args = build_parser().parse_args(
            ["serve", "--data-dir", str(tmp_path), "--port", "8765", *extra]
        )
        assert server_cli.run_serve(args) == 0
        assert calls[-1]["access_log"] is expected


# --- {python} -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["flags", "template"])
def test_the_python_placeholder_is_this_interpreter(mode):
    argv = build_argv(["{python}", "train.py", "--lr={lr}"], mode, {"lr": 0.1})
    assert argv[0] == sys.executable
    if mode == "template":
        assert argv == [sys.executable, "train.py", "--lr=0.1"]
    else:
        assert argv == [sys.executable, "train.py", "--lr={lr}", "--lr", "0.1"]


def test_a_parameter_named_python_does_not_replace_the_interpreter():
    argv = build_argv(["{python}", "t.py", "{python}x"], "template", {"python": 3})
    assert argv == [sys.executable, "t.py", f"{sys.executable}x"]


def test_every_example_runs_under_tunelabs_own_python():
    for path in sorted(ROOT.glob("examples/**/*.yaml")):
        command = yaml.safe_load(path.read_text())["execution"]["command"]
        assert command[0] == "{python}", path


# --- a study whose every trial failed -------------------------------------------------


def test_a_study_whose_every_trial_failed_says_so(client):
    study = create_study(client, limits={"max_trials": 3, "max_parallel_trials": 3})
    for _ in range(3):
        trial = ask(client, study["id"])
        tell(client, trial["id"], state="failed", error="ModuleNotFoundError")
    done = get_study(client, study["id"])
    assert done["state"] == "completed"
    assert done["state_reason"].startswith("every trial failed (3 of 3); max_trials reached")


def test_a_study_with_one_success_reads_as_before(client):
    study = create_study(client, limits={"max_trials": 2, "max_parallel_trials": 2})
    first, second = ask(client, study["id"]), ask(client, study["id"])
    tell(client, first["id"], state="failed")
    tell(client, second["id"], value=0.5)
    assert get_study(client, study["id"])["state_reason"] == "max_trials reached (2)"


# --- one-point curves -----------------------------------------------------------------


def _axes(fig: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    layout = fig.to_plotly_json()["layout"]
    return layout["xaxis"], layout["yaxis"]


def test_a_one_point_curve_gets_axes_around_its_point():
    fig = trial_curves({"val_loss": Series([1.0], [0.25], 7)}, 7)
    x, y = _axes(fig)
    assert x["range"] == [0.0, pytest.approx(1.1)] and list(x["tickvals"]) == [0.0, 1.0]
    assert y["range"] == [pytest.approx(0.225), pytest.approx(0.275)]
    assert fig.layout.meta["single"] == ["val_loss"]
    assert fig.data[0].marker.size == 8


def test_a_one_point_curve_at_zero_or_worse_still_has_a_range():
    fig = trial_curves({"m": Series([0.0], [0.0], 1)}, 1)
    x, y = _axes(fig)
    assert x["range"][0] < 0.0 < x["range"][1] and y["range"] == [-1.0, 1.0]
    fig = trial_curves({"m": Series([3.0], [float("nan")], 1)}, 1)
    x, y = _axes(fig)
    assert "range" not in y and x["range"][1] > 3.0


def test_a_longer_curve_is_left_to_autorange():
    fig = trial_curves({"m": Series([1.0, 2.0], [0.5, 0.4], 2)}, 2)
    x, y = _axes(fig)
    assert "range" not in x and "range" not in y and fig.layout.meta["single"] == []


# --- the reference page --------------------------------------------------------------


def test_the_reference_page_states_each_study_default():
    from app.studies.schemas import ExecutionSpec, Limits

    text = (ROOT / "docs/reference.md").read_text()
    for model, prefix in ((Limits, "limits"), (ExecutionSpec, "execution")):
        for name in model.model_fields:
            if name == "command":
                continue
            assert re.search(rf"`{prefix}\.{name}`", text), f"{prefix}.{name}"
    assert "| `limits.max_parallel_trials` | `1` |" in text
    assert "| `limits.heartbeat_timeout_s` | `60` |" in text
    assert "docs/reference.md" in (ROOT / "README.md").read_text()
