"""Learning-curve forecasts (app/engine/forecast.py) and the forecast stopping rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine import registry
from app.engine.base import Action, Fidelity, StudyContext, TrialRecord, TrialState
from app.engine.errors import ConfigError
from app.engine.forecast import MAX_POINTS, _thin, forecast
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
FIDELITY = Fidelity("epoch", 1, 27, 3.0)


def power_curve(end: float, steps: int, noise: float = 0.0, seed: int = 0) -> dict[float, float]:
    rng = np.random.default_rng(seed)
    return {
        float(t): end + 0.6 * t**-0.7 + float(rng.normal(0, noise)) for t in range(1, steps + 1)
    }


def test_a_power_law_curve_is_forecast_within_its_interval():
    truth = power_curve(0.1, 27)
    for known in (4, 9, 15):
        seen = {t: v for t, v in truth.items() if t <= known}
        predicted = forecast(seen, 27)
        assert predicted is not None
        assert predicted.steps[0] == known + 1 and predicted.steps[-1] == 27
        low, high = predicted.low[-1], predicted.high[-1]
        assert low <= truth[27.0] <= high
        assert abs(predicted.final - truth[27.0]) < 0.05


def test_the_interval_narrows_as_points_come_in():
    truth = power_curve(0.1, 27, noise=0.005)
    widths = []
    for known in (3, 6, 12, 20):
        predicted = forecast({t: v for t, v in truth.items() if t <= known}, 27)
        assert predicted is not None
        widths.append(predicted.high[-1] - predicted.low[-1])
    assert widths == sorted(widths, reverse=True)


def test_the_interval_widens_with_the_distance_forecast():
    predicted = forecast(power_curve(0.1, 5, noise=0.01), 27)
    assert predicted is not None
    spreads = list(predicted.spread)
    assert spreads[-1] > spreads[0]


def test_no_forecast_from_too_few_points_or_past_the_horizon():
    assert forecast({1.0: 0.5, 2.0: 0.4}, 27, min_points=3) is None
    assert forecast({1.0: 0.5, 2.0: math.nan, 3.0: math.inf}, 27) is None
    assert forecast(power_curve(0.1, 27), 27) is None


def test_a_long_curve_is_thinned_to_a_fixed_number_of_points():
    steps = np.arange(1.0, 20_001.0)
    kept, values = _thin(steps, 1.0 / steps)
    assert len(kept) <= MAX_POINTS + 5 and len(values) == len(kept)
    assert kept[-1] == 20_000 and kept[0] == 1
    assert forecast(power_curve(0.1, 20_000, noise=0.01), 40_000) is not None


def _study(
    early: dict, direction: str = "minimize", fidelity: Fidelity | None = FIDELITY
) -> MemoryStudy:
    strategy = {"name": "random"}
    context = StudyContext(
        space=SPACE, direction=direction, metric="loss", seed=1, options={}, fidelity=fidelity
    )  # type: ignore[arg-type]
    return MemoryStudy(registry.build(strategy, early, context), context)


def _run(study: MemoryStudy, curve: dict[float, float], tell: bool = True):
    record, _ = study.ask()
    decision = None
    for step, value in sorted(curve.items()):
        decision = study.report(record.id, {step: value})
        if decision.action != Action.CONTINUE:
            return record.id, decision
    if tell:
        study.tell(record.id, curve[max(curve)])
    return record.id, decision


def test_the_rule_stops_a_curve_that_cannot_beat_the_best_and_says_why():
    study = _study({"rule": "forecast"})
    _run(study, power_curve(0.1, 27))  # the incumbent: 0.1 + a little
    trial_id, decision = _run(study, power_curve(0.5, 27, noise=0.002))
    assert decision is not None and decision.action == Action.STOP
    record = study.history.get(trial_id)
    assert record.state == TrialState.STOPPED
    assert max(record.intermediate) == 3  # as soon as min_points (3) are in
    assert decision.reason.startswith("stopped at step 3: loss forecast at step 27 is 0.")
    assert "90 % interval" in decision.reason and "below 5.0%" in decision.reason
    shown = record.extra["forecast"]
    assert shown["from_step"] == 3 and shown["steps"][-1] == 27
    assert shown["low"][-1] <= shown["mean"][-1] <= shown["high"][-1]
    assert 0.4 < shown["mean"][-1] < 0.65 and shown["probability"] < 0.05


def test_the_rule_lets_a_promising_curve_run():
    study = _study({"rule": "forecast"})
    _run(study, power_curve(0.3, 27))
    trial_id, _ = _run(study, power_curve(0.1, 27, noise=0.002))
    assert study.history.get(trial_id).state == TrialState.COMPLETED


def test_without_an_incumbent_nothing_is_stopped():
    study = _study({"rule": "forecast", "min_trials": 2})
    _run(study, power_curve(0.1, 27))
    trial_id, _ = _run(study, power_curve(0.9, 27))
    assert study.history.get(trial_id).state == TrialState.COMPLETED


def test_maximized_metrics_are_mirrored():
    study = _study({"rule": "forecast"}, direction="maximize")
    _run(study, {t: -v for t, v in power_curve(0.1, 27).items()})
    trial_id, decision = _run(study, {t: -v for t, v in power_curve(0.5, 27).items()})
    assert decision.action == Action.STOP
    shown = study.history.get(trial_id).extra["forecast"]
    assert shown["low"][-1] <= shown["mean"][-1] <= shown["high"][-1] < -0.3


def test_without_a_fidelity_the_horizon_is_where_finished_curves_ended():
    study = _study({"rule": "forecast"}, fidelity=None)
    _run(study, power_curve(0.1, 40))
    assert study.history.index("minimize").last_step() == 40
    trial_id, decision = _run(study, power_curve(0.5, 40))
    assert decision.action == Action.STOP
    assert study.history.get(trial_id).extra["forecast"]["steps"][-1] == 40


def test_inside_asha_the_forecast_stops_what_the_rung_would_keep():
    strategy = {"name": "asha", "mode": "stop"}
    context = StudyContext(
        space=SPACE, direction="minimize", metric="loss", seed=1, options={}, fidelity=FIDELITY
    )
    early = {"rule": "forecast"}
    study = MemoryStudy(registry.build(strategy, early, context), context)
    _run(study, power_curve(0.1, 27))
    # Better than the first at epoch 1 (rung 0), so asha keeps it; between rungs 0 and 1
    # (it reports every quarter epoch) its forecast levels out far above 0.1.
    trial_id, decision = _run(study, {t: 0.4 + 0.1 / t for t in np.arange(1.0, 27.25, 0.25)})
    assert decision.action == Action.STOP and "forecast" in decision.reason
    record = study.history.get(trial_id)
    assert max(record.intermediate) < 3
    assert record.extra["rungs"] and "forecast" in record.extra


@pytest.mark.parametrize(
    ("early", "field"),
    [
        ({"rule": "forecast", "threshold": 1.5}, "early_stopping.threshold"),
        ({"rule": "forecast", "threshold": 0}, "early_stopping.threshold"),
        ({"rule": "forecast", "min_points": 1}, "early_stopping.min_points"),
        ({"rule": "forecast", "horizon": -3}, "early_stopping.horizon"),
        ({"rule": "forecast", "treshold": 0.1}, "early_stopping.treshold"),
    ],
)
def test_bad_options_name_their_field(early, field):
    with pytest.raises(ConfigError) as error:
        registry.parse({"name": "random"}, early, has_fidelity=False)
    assert error.value.field == field


def test_multi_fidelity_strategies_take_the_forecast_only():
    settings = registry.parse({"name": "asha"}, {"rule": "forecast"}, has_fidelity=True)
    assert settings.early_stopping == {
        "rule": "forecast",
        "threshold": 0.05,
        "min_points": 3,
        "min_trials": 1,
        "warmup_steps": 0.0,
    }
    with pytest.raises(ConfigError) as error:
        registry.parse({"name": "asha"}, {"rule": "median"}, has_fidelity=True)
    assert error.value.field == "early_stopping"


def test_index_last_step_follows_finished_curves():
    study = _study({"rule": "forecast"}, fidelity=None)
    index = study.history.index("minimize")
    assert index.last_step() is None
    record = TrialRecord(0, 0, {"x": 0.5}, TrialState.COMPLETED, value=0.2)
    index.put(record, curve={1.0: 0.5, 7.0: 0.2})
    assert index.last_step() == 7.0
