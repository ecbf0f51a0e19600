"""PriorBand: asha, hyperband and bohb draw new configs from the user's prior."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from app.engine import registry
from app.engine.base import Action, Fidelity, StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace

FIDELITY = Fidelity("epoch", 1, 27, 3.0)


def _space(prior_at: float | None) -> SearchSpace:
    spec = {"type": "float", "low": 0.0, "high": 1.0}
    prior = {} if prior_at is None else {"prior": {"value": prior_at, "confidence": "high"}}
    return SearchSpace.from_dict({"x": {**spec, **prior}, "y": spec})


def _study(name: str, space: SearchSpace, mode: str = "stop", seed: int = 0) -> MemoryStudy:
    context = StudyContext(
        space=space, direction="minimize", metric="loss", seed=seed, options={}, fidelity=FIDELITY
    )
    return MemoryStudy(registry.build({"name": name, "mode": mode}, None, context), context)


def _loss(params, step: int, best_x: float) -> float:
    return (params["x"] - best_x) ** 2 + 0.1 * (params["y"] - 0.5) ** 2 + 0.5 / step


def _run(study: MemoryStudy, trials: int, best_x: float) -> None:
    for _ in range(trials):
        record, _ = study.ask()
        budget = int(record.budget or FIDELITY.max)
        for step in range(1, budget + 1):
            decision = study.report(record.id, {float(step): _loss(record.params, step, best_x)})
            if decision.action != Action.CONTINUE:
                break
        else:
            study.tell(record.id, _loss(record.params, budget, best_x))


@pytest.mark.parametrize("name", ["asha", "hyperband", "bohb"])
def test_new_configs_gather_around_the_prior(name):
    study = _study(name, _space(0.8))
    _run(study, 30, best_x=0.8)
    records = study.history.trials()
    sources = Counter(r.extra.get("prior_band") for r in records)
    assert sources["prior"] + sources["incumbent"] >= sources["sampler"]
    from_prior = [r.params["x"] for r in records if r.extra.get("prior_band") == "prior"]
    assert abs(float(np.median(from_prior)) - 0.8) < 0.1


def test_without_a_prior_nothing_changes():
    study = _study("asha", _space(None))
    _run(study, 10, best_x=0.8)
    assert all("prior_band" not in r.extra for r in study.history.trials())


def test_asha_draws_half_its_configs_from_the_sampler_and_a_high_bracket_few():
    study = _study("asha", _space(0.5))
    _run(study, 40, best_x=0.5)
    sources = Counter(r.extra.get("prior_band") for r in study.history.trials())
    # Bracket 0: 1 / (1 + 3^0) = 1/2 from the sampler.
    assert 10 <= sources["sampler"] <= 30


def test_a_wrong_prior_hands_its_share_to_the_incumbent():
    """The prior says x = 0.05, the optimum is at 0.9: once rungs fill with results the
    top configs sit far from the prior, so the local search around the incumbent takes
    most of the draws that the prior had."""
    study = _study("asha", _space(0.05), mode="pause")
    _run(study, 120, best_x=0.9)  # asks: new trials and resumes
    late = [r for r in study.history.trials() if r.number >= 30 and "prior_band" in r.extra]
    sources = Counter(r.extra["prior_band"] for r in late)
    assert sources["incumbent"] > 5 * sources["prior"]
    best = min(
        (r for r in study.history.trials() if r.state == TrialState.COMPLETED),
        key=lambda r: r.value or 0.0,
    )
    assert abs(best.params["x"] - 0.9) < 0.25
