"""The learning curves' forecast band (app/plots/builders/learning_curves.py)."""

from __future__ import annotations

from app.plots.builders import curves
from app.plots.repository import Series, TrialRow


def _row(trial_id: int, state: str, value: float | None = None) -> TrialRow:
    return TrialRow(trial_id, trial_id, state, {}, value, 27.0, -1, None, None, None, None)


def _series(end: float, steps: int) -> Series:
    xs = [float(t) for t in range(1, steps + 1)]
    return Series(xs, [end + 0.6 * t**-0.7 for t in xs], cursor=steps)


def test_running_trials_get_a_dashed_band_up_to_the_horizon():
    trials = [_row(1, "completed", 0.13), _row(2, "running")]
    series = {1: _series(0.1, 27), 2: _series(0.3, 6)}
    fig = curves(trials, series, "loss", {"param": "epoch", "min": 1, "max": 27}, None, "", 27.0)
    band = [t for t in fig.data if t.name == "#2 forecast"]
    assert len(band) == 3  # upper edge, lower edge (filled to the upper), mean
    upper, lower, mean = band
    assert lower.fill == "tonexty" and all(t.line.dash == "dash" for t in band)
    assert upper.x[0] == 6 and upper.x[-1] == 27
    assert all(lo <= m <= hi for lo, m, hi in zip(lower.y, mean.y, upper.y, strict=True))
    assert 0.25 < mean.y[-1] < 0.45
    assert fig.layout.meta["forecast"] == [2]
    # The running trial's own trace comes after the band: the live index points at it.
    trace, _ = fig.layout.meta["live"]["2"]
    assert fig.data[trace].name == "#2 running"


def test_no_band_without_a_horizon_or_enough_points():
    trials = [_row(2, "running"), _row(3, "running")]
    series = {2: _series(0.3, 6), 3: _series(0.3, 2)}
    assert curves(trials, series, "loss").layout.meta["forecast"] == []
    fig = curves(trials, series, "loss", None, None, "", 27.0)
    assert fig.layout.meta["forecast"] == [2]
