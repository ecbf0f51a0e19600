from __future__ import annotations

import json
import math
from pathlib import Path

from worker.launch import (
    MetricParser,
    build_argv,
    build_env,
    checkpoint_dir,
    format_value,
    trial_values,
)
from worker.slots import make_slots


def test_flags_are_argv_words_never_a_shell():
    values = trial_values({"lr": 0.001, "name": "a b; rm -rf /", "deep": True}, "epochs", 9.0)
    argv = build_argv(["python", "train.py"], "flags", values)
    assert argv == [
        "python",
        "train.py",
        "--lr",
        "0.001",
        "--name",
        "a b; rm -rf /",
        "--deep",
        "true",
        "--epochs",
        "9",
    ]


def test_template_fills_known_placeholders_only():
    argv = build_argv(
        ["python", "train.py", "--opt={optimizer}", "{lr}", '{"json": 1}', "{unknown}"],
        "template",
        {"optimizer": "adam", "lr": 0.5},
    )
    assert argv == ["python", "train.py", "--opt=adam", "0.5", '{"json": 1}', "{unknown}"]


def test_budget_prints_as_an_integer_when_integral():
    assert format_value(3.0) == "3"
    assert format_value(2.5) == "2.5"
    assert format_value(7) == "7"


def test_env_carries_the_trial(tmp_path: Path):
    env = build_env(
        base={"PATH": "/bin"},
        extra={"A": "1"},
        trial_id=7,
        api_url="http://api",
        params={"lr": 0.1},
        budget=3.0,
        checkpoint_dir=tmp_path,
        cuda_visible_devices="2,3",
    )
    assert env["TUNELAB_TRIAL_ID"] == "7" and env["TUNELAB_API_URL"] == "http://api"
    assert json.loads(env["TUNELAB_PARAMS"]) == {"lr": 0.1}
    assert env["TUNELAB_BUDGET"] == "3" and env["TUNELAB_CHECKPOINT_DIR"] == str(tmp_path)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["A"] == "1" and env["PATH"] == "/bin"


def test_checkpoint_dir_is_stable_across_runs(tmp_path: Path):
    assert checkpoint_dir(tmp_path, 1, 4) == checkpoint_dir(tmp_path, 1, 4)
    assert checkpoint_dir(tmp_path, 1, 4).is_dir()


def test_parser_reads_steps_values_nan_and_counts():
    parser = MetricParser.from_spec(
        [
            {"name": "acc", "regex": r"epoch (?P<step>\d+) .*acc=(?P<value>\S+)"},
            {"name": "hits", "regex": r"hit (\d+)"},
        ]
    )
    assert parser.parse("epoch 3 loss=1 acc=0.25") == [("acc", 3.0, 0.25)]
    nan = parser.parse("epoch 4 acc=nan")
    assert nan[0][:2] == ("acc", 4.0) and math.isnan(nan[0][2])
    assert parser.parse("epoch 5 acc=oops") == []
    # No step group: the n-th match is step n.
    assert parser.parse("hit 10") == [("hits", 1.0, 10.0)]
    assert parser.parse("hit 20") == [("hits", 2.0, 20.0)]
    assert parser.parse("nothing here") == []


def test_parser_is_linear_on_a_pathological_line():
    import time

    parser = MetricParser.from_spec([{"name": "x", "regex": r"(a+)+b(?P<value>\d)"}])
    started = time.monotonic()
    assert parser.parse("a" * 100_000) == []
    assert time.monotonic() - started < 1.0


def test_slots_split_gpus():
    slots = make_slots("h", ["0", "1", "2", "3"], None, 2)
    assert [s.cuda_visible_devices for s in slots] == ["0,1", "2,3"]
    assert [s.name for s in make_slots("h", [], 3)] == ["h:0", "h:1", "h:2"]
    assert make_slots("h", [], None)[0].cuda_visible_devices is None
