"""The registry's shortcut for metric reports agrees with the strategies it builds."""

from __future__ import annotations

import itertools

import pytest

from app.engine import registry
from tests.engine.sim import SAMPLER_NAMES, SCHEDULERS, build


@pytest.mark.parametrize(
    ("sampler", "scheduler", "options", "early"),
    [
        (sampler, *scheduler)
        for sampler, scheduler in itertools.product(SAMPLER_NAMES, SCHEDULERS)
        if not (scheduler[0] == "bohb" and sampler in ("grid", "sobol", "gp"))
    ],
)
def test_decides_on_results_exactly_when_a_scheduler_is_built(sampler, scheduler, options, early):
    # A report skips building the strategy when this says no: it must never skip a
    # scheduler that could stop or pause the trial.
    multi = scheduler in registry.MULTI_FIDELITY
    strategy = {"name": scheduler if multi else sampler, **options}
    built = build(sampler, scheduler, options, early).strategy.scheduler
    assert registry.decides_on_results(strategy, early) == (built.name != "none")


def test_an_empty_early_stopping_builds_no_scheduler():
    assert not registry.decides_on_results({"name": "random"}, None)
    assert not registry.decides_on_results({"name": "tpe"}, {})
