from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.base import StudyContext, TrialRecord, TrialState
from app.engine.memory import MemoryHistory
from app.engine.samplers.gp import GPSampler, log_expected_improvement
from app.engine.samplers.observations import Encoding, from_history
from app.engine.samplers.tpe import TPESampler
from app.engine.space import SearchSpace
from tests.engine.sim import SPACE

WIDE = SearchSpace.from_dict(
    {
        "a": {"type": "float", "low": 1e-5, "high": 10, "scale": "log"},
        "b": {"type": "float", "low": 0.5, "high": 0.999, "scale": "reverse_log"},
        "c": {"type": "int", "low": 1, "high": 1000, "scale": "log"},
        "d": {"type": "int", "low": 0, "high": 100, "step": 5},
        "e": {"type": "float", "low": -3, "high": 3, "step": 0.5},
        "f": {"type": "categorical", "choices": ["x", 1, True, 2.5]},
    }
)


def test_vector_encoding_matches_the_space():
    rng = np.random.default_rng(0)
    configs = [WIDE.from_unit(rng.random(len(WIDE.searchable)).tolist()) for _ in range(50)]
    encoding = Encoding(WIDE)
    units, indices = encoding.encode(configs)
    for row, config in enumerate(configs):
        expected = WIDE.to_unit(config)
        numeric = [u for p, u in zip(WIDE.searchable, expected) if p.name != "f"]
        assert units[row].tolist() == pytest.approx(numeric)
        assert encoding.decode(units[row].tolist(), indices[row].tolist()) == config


def test_running_and_stopped_trials_rank_below_completed_ones():
    history = MemoryHistory()
    params = SPACE.from_unit([0.5] * len(SPACE.searchable))
    rows = [
        (TrialState.COMPLETED, 3.0, -1),
        (TrialState.STOPPED, 0.1, 1),
        (TrialState.STOPPED, 0.2, 2),
        (TrialState.RUNNING, None, -1),
        (TrialState.FAILED, None, -1),
    ]
    for number, (state, value, rung) in enumerate(rows):
        history.records.append(
            TrialRecord(
                id=number, number=number, params=params, state=state, value=value, rung=rung
            )
        )
    observed = from_history(history, "minimize")
    assert observed.values == [3.0, 0.2, 0.1]
    assert len(observed.pending) == 1


@pytest.mark.parametrize("sampler_class", [TPESampler, GPSampler])
def test_model_samplers_find_the_quadratic_minimum(sampler_class):
    space = SearchSpace.from_dict(
        {
            "x": {"type": "float", "low": -5, "high": 5},
            "k": {"type": "categorical", "choices": ["a", "b"]},
        }
    )
    context = StudyContext(space=space, direction="maximize", metric="y", seed=1, options={})
    sampler = sampler_class(context)
    history = MemoryHistory()
    for number in range(30):
        params = sampler.suggest(history).params
        value = -((params["x"] - 1.5) ** 2) - (0 if params["k"] == "b" else 1)
        history.records.append(
            TrialRecord(
                id=number, number=number, params=params, state=TrialState.COMPLETED, value=value
            )
        )
    best = max(history.records, key=lambda r: r.value)
    assert best.params["k"] == "b" and abs(best.params["x"] - 1.5) < 0.3


def test_log_ei_is_finite_far_in_the_tail():
    values = log_expected_improvement(np.array([0.0, 10.0, 100.0]), np.array([1.0, 1.0, 1.0]), 0.0)
    assert np.all(np.isfinite(values)) and values[0] > values[1] > values[2]
    assert values[0] == pytest.approx(math.log(1 / math.sqrt(2 * math.pi)))
