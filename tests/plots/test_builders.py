from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from app.plots import builders
from app.plots.builders.common import SVG_POINTS
from app.plots.builders.parameters import PARALLEL_BANDS, PARALLEL_TRIALS
from app.plots.builders.scheduling import TIMELINE_RESOLUTION
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
    assert len(builders.parallel(trials, SPACE, "loss", brush=True).data[0].dimensions) == 4
    assert len(builders.slices(trials, SPACE, "loss").data) == 3
    contour = builders.contour(trials, SPACE, "loss", "lr", "depth")
    assert contour.data[0].type == "contour"
    assert builders.rungs(trials, None, "loss").data
    assert {t.name for t in builders.timeline(trials).data} == {"completed", "stopped"}


def test_big_studies_draw_the_best_trials_and_a_sample() -> None:
    trials = _trials(5000)
    fig = builders.parallel(trials, SPACE, "loss", "minimize", brush=True)
    kept = len(fig.data[0].dimensions[-1]["values"])
    assert kept <= PARALLEL_TRIALS and "the best 1000" in fig.layout.title.text
    best = min(t.value for t in trials if t.state in ("completed", "stopped"))
    assert fig.data[0].dimensions[-1]["values"].min() == np.float32(best)


def test_parallel_lines_are_a_few_svg_paths_with_the_best_trial_on_top() -> None:
    trials = _trials(5000)
    fig = builders.parallel(trials, SPACE, "loss", "minimize")
    bands = [t for t in fig.data if t.mode == "lines"]
    assert {t.type for t in fig.data} == {"scatter"}
    assert len(bands) <= PARALLEL_BANDS
    # One polyline per kept trial: a point on each axis (lr, depth, opt, loss), then a gap.
    points = sum(len(t.y) for t in bands)
    assert points == PARALLEL_TRIALS * (4 + 1)
    ys = np.concatenate([t.y for t in bands])
    assert np.nanmin(ys) >= 0 and np.nanmax(ys) <= 1
    best = min((t for t in trials if t.state in ("completed", "stopped")), key=lambda t: t.value)
    top = fig.data[-2]
    assert top.name == f"best (#{best.number})" and top.customdata[0] == best.id
    assert top.y[-1] == 0  # the lowest loss sits at the bottom of the objective axis
    labels = {a.text for a in fig.layout.annotations}
    assert {"loss", "log10(lr)"} <= labels


def test_importance_bars_put_the_largest_on_top_and_say_why_there_are_none() -> None:
    fig = builders.importance({"lr": 0.7, "depth": 0.2, "opt": 0.1}, "fANOVA")
    assert list(fig.data[0].y) == ["opt", "depth", "lr"]
    empty = builders.importance({}, "fANOVA", "needs at least 5 completed trials")
    assert "needs at least 5" in empty.layout.annotations[0].text


def test_small_figures_are_svg_and_huge_ones_webgl() -> None:
    assert {t.type for t in builders.history(_trials(), "minimize", "loss").data} == {"scatter"}
    steps = [float(s) for s in range(SVG_POINTS)]
    series = {"loss": Series(steps, steps), "acc": Series(steps, steps)}
    assert {t.type for t in builders.trial_curves(series, 0).data} == {"scattergl"}


def test_huge_histories_mark_the_best_trials_and_a_sample_and_stay_svg() -> None:
    many = _trials(3 * SVG_POINTS)
    fig = builders.history(many, "minimize", "loss")
    assert {t.type for t in fig.data} == {"scatter"}
    markers = sum(len(t.x) for t in fig.data if t.mode == "markers")
    assert markers <= SVG_POINTS // 2 and "and a sample" in fig.layout.title.text
    # The staircase still follows every trial: it ends at the study's best and last trial.
    best = next(t for t in fig.data if t.name == "best so far")
    assert best.y[-1] == np.float32(min(t.value or 0.0 for t in many))
    assert best.x[-1] == many[-1].number


def test_history_tells_the_page_where_a_new_trial_goes() -> None:
    trials = _trials(40)
    fig = builders.history(trials, "minimize", "loss")
    meta = fig.layout.meta
    assert fig.data[meta["traces"]["completed"]].name == "completed"
    assert fig.data[meta["traces"]["stopped"]].name == "stopped"
    assert fig.data[meta["best_trace"]].name == "best so far"
    assert meta["best"] == min(t.value or 0.0 for t in trials) and meta["direction"] == "minimize"


def test_best_so_far_is_a_staircase_of_improvements_to_the_last_trial() -> None:
    trials = _trials(40)
    fig = builders.history(trials, "minimize", "loss")
    best = next(t for t in fig.data if t.name == "best so far")
    ys = list(best.y)
    assert all(a > b for a, b in zip(ys, ys[1:-1], strict=False))  # one point per improvement
    assert best.x[-1] == trials[-1].number and ys[-1] == ys[-2]
    assert ys[-1] == np.float32(min(t.value or 0.0 for t in trials))


def test_curves_of_a_big_study_keep_running_best_and_a_sample() -> None:
    trials = _trials(200)
    trials[-1] = TrialRow(**{**trials[-1].__dict__, "state": "running", "value": None})
    worst = max((t for t in trials if t.value is not None), key=lambda t: t.value or 0.0)
    shown, note = builders.curve_trials(trials, "minimize", best_trial_id=worst.id, limit=40)
    assert shown is not None and note.startswith(" (") and "of 199 finished" in note
    ranked = sorted((t for t in trials if t.value is not None), key=lambda t: t.value or 0.0)
    assert {t.id for t in ranked[:20]} <= shown  # the best half of the limit
    assert trials[-1].id in shown and worst.id in shown  # running and the study's best
    assert len(shown) <= 40 + 2
    assert builders.curve_trials(trials, "minimize", limit=500) == (None, "")


def test_timeline_merges_overlapping_runs_of_one_worker_only() -> None:
    def trial(i: int, worker: str, start: int, end: int) -> TrialRow:
        return TrialRow(
            **{
                **_trials(1)[0].__dict__,
                "id": i,
                "number": i,
                "state": "completed",
                "worker": worker,
                "started_at": T0 + timedelta(seconds=start),
                "finished_at": T0 + timedelta(seconds=end),
            }
        )

    trials = [trial(1, "a", 0, 10), trial(2, "a", 5, 20), trial(3, "a", 30, 40)]
    trials.append(trial(4, "b", 0, 10))
    fig = builders.timeline(trials)
    (trace,) = fig.data
    xs = [x for x in trace.x if np.isfinite(x)]
    assert len(xs) == 6  # a: 0-20 and 30-40, b: 0-10
    ms = T0.timestamp() * 1000
    assert xs[:2] == [ms, ms + 20_000] and list(trace.customdata[:2]) == [1, 1]
    assert "1 more" in trace.text[0] and trace.text[3] == ""


def test_timeline_closes_gaps_narrower_than_a_pixel_of_the_whole_range() -> None:
    def trial(i: int, start: float, end: float) -> TrialRow:
        return TrialRow(
            **{
                **_trials(1)[0].__dict__,
                "id": i,
                "number": i,
                "state": "completed",
                "worker": "a",
                "started_at": T0 + timedelta(seconds=start),
                "finished_at": T0 + timedelta(seconds=end),
            }
        )

    span = 100_000.0
    gap = span * TIMELINE_RESOLUTION
    trials = [trial(1, 0, 10), trial(2, 10 + gap / 2, 20), trial(3, 20 + gap * 3, span)]
    (trace,) = builders.timeline(trials).data
    xs = [x for x in trace.x if np.isfinite(x)]
    assert len(xs) == 4  # 1 and 2 joined; 3 stays apart
