from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from app.plots import builders
from app.plots.importance import importances
from app.plots.repository import Series, TrialRow

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
    "depth": {"type": "int", "low": 1, "high": 8},
    "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
    "epochs": {"type": "fixed", "value": 3},
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _trials(n: int = 30) -> list[TrialRow]:
    rows = []
    for i in range(n):
        lr = 10 ** (-4 + 4 * i / n)
        state = "completed" if i % 5 else "stopped"
        rows.append(
            TrialRow(
                id=i + 1,
                number=i,
                state=state,
                params={
                    "lr": lr,
                    "depth": i % 8 + 1,
                    "opt": "adam" if i % 2 else "sgd",
                    "epochs": 3,
                },
                value=(lr - 0.01) ** 2 + 0.001 * (i % 3),
                budget=None,
                rung=i % 3 - 1,
                worker=f"w{i % 2}",
                last_step=9.0,
                started_at=T0 + timedelta(seconds=i),
                finished_at=T0 + timedelta(seconds=i + 5),
            )
        )
    return rows


def test_history_has_best_so_far_that_never_gets_worse() -> None:
    fig = builders.history(_trials(), "minimize", "loss")
    best = next(t for t in fig.data if t.name == "best so far")
    assert all(a >= b for a, b in zip(best.y, best.y[1:], strict=False))


def test_curves_give_running_trials_their_own_trace_and_mark_stopped_ends() -> None:
    trials = _trials(4)
    trials[3] = TrialRow(**{**trials[3].__dict__, "state": "running"})
    series = {t.id: Series([0.0, 1.0, 2.0], [3.0, 2.0, 1.0], cursor=t.id * 10) for t in trials}
    fig = builders.curves(trials, series, "loss", {"min": 1, "max": 9, "reduction_factor": 3})
    live = fig.layout.meta["live"]
    assert list(live) == ["4"] and live["4"][1] == 40
    assert fig.data[live["4"][0]].name == "#3 running"
    assert any(t.name == "stopped here" for t in fig.data)
    assert builders.rung_levels({"min": 1, "max": 9, "reduction_factor": 3}) == [1, 3, 9]
    assert len(fig.layout.shapes) == 3  # rung cutoffs


def test_every_builder_handles_an_empty_study() -> None:
    for fig in (
        builders.history([], "minimize", "loss"),
        builders.curves([], {}, "loss"),
        builders.parallel([], SPACE, "loss"),
        builders.slices([], SPACE, "loss"),
        builders.contour([], SPACE, "loss", "lr", "depth"),
        builders.importance({}, "x"),
        builders.rungs([], None, "loss"),
        builders.timeline([]),
        builders.trial_curves({}, 0),
    ):
        assert fig.layout.annotations


def test_charts_of_a_study_with_trials() -> None:
    trials = _trials()
    assert len(builders.parallel(trials, SPACE, "loss").data[0].dimensions) == 4
    assert len(builders.slices(trials, SPACE, "loss").data) == 3
    contour = builders.contour(trials, SPACE, "loss", "lr", "depth")
    assert contour.data[0].type == "contour"
    assert builders.rungs(trials, None, "loss").data
    assert {t.name for t in builders.timeline(trials).data} == {"completed", "stopped"}


def test_big_studies_draw_the_best_trials_and_a_sample() -> None:
    trials = _trials(5000)
    fig = builders.parallel(trials, SPACE, "loss", "minimize")
    kept = len(fig.data[0].dimensions[-1]["values"])
    assert kept <= builders.PARALLEL_TRIALS and "the best 1000" in fig.layout.title.text
    best = min(t.value for t in trials if t.state in ("completed", "stopped"))
    assert fig.data[0].dimensions[-1]["values"].min() == np.float32(best)


def test_importance_finds_the_parameter_that_matters() -> None:
    scores = importances(_trials(60), SPACE)
    assert set(scores) == {"lr", "depth", "opt"}
    assert max(scores, key=scores.__getitem__) == "lr"
    assert abs(sum(scores.values()) - 1) < 1e-9
    assert importances(_trials(3), SPACE) == {}
