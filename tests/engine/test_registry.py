"""The registry: option validation, defaults, stored settings, and the shortcut for
metric reports agreeing with the strategies it builds."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from app.engine import registry
from app.engine.base import StudyContext
from app.engine.errors import ConfigError
from tests.engine.sim import FIDELITY, SAMPLER_NAMES, SCHEDULERS, SPACE, build


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


# Options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "early", "field"),
    [
        ({"name": "random", "sed": 1}, None, "strategy.sed"),
        ({"name": "grid", "grid_point": 3}, None, "strategy.grid_point"),
        ({"name": "grid", "grid_points": 0}, None, "strategy.grid_points"),
        ({"name": "grid", "grid_points": True}, None, "strategy.grid_points"),
        ({"name": "grid", "grid_points": 1001}, None, "strategy.grid_points"),
        ({"name": "tpe", "n_startup_trial": 3}, None, "strategy.n_startup_trial"),
        ({"name": "tpe", "n_ei_candidates": 0}, None, "strategy.n_ei_candidates"),
        ({"name": "gp", "n_ei_candidates": 8}, None, "strategy.n_ei_candidates"),
        ({"name": "sobol", "grid_points": 3}, None, "strategy.grid_points"),
        ({"name": "asha", "mode": "halt"}, None, "strategy.mode"),
        ({"name": "asha", "brackets": 0}, None, "strategy.brackets"),
        ({"name": "asha", "random_fraction": 0.5}, None, "strategy.random_fraction"),
        (
            {"name": "hyperband", "sampler": "tpe", "n_ei_candidate": 3},
            None,
            "strategy.n_ei_candidate",
        ),
        ({"name": "hyperband", "sampler": "nope"}, None, "strategy.sampler"),
        ({"name": "bohb", "random_fraction": 2}, None, "strategy.random_fraction"),
        ({"name": "bohb", "min_points": 0}, None, "strategy.min_points"),
        ({"name": "nope"}, None, "strategy.name"),
        ({"name": "random"}, {"rule": "median", "min_trial": 3}, "early_stopping.min_trial"),
        ({"name": "random"}, {"rule": "median", "warmup_steps": -1}, "early_stopping.warmup_steps"),
        ({"name": "random"}, {"rule": "mean"}, "early_stopping.rule"),
        ({"name": "asha"}, {"rule": "median"}, "early_stopping"),
    ],
)
def test_a_wrong_option_is_refused_with_its_name(strategy, early, field):
    with pytest.raises(ConfigError) as raised:
        registry.validate(strategy, early, has_fidelity=True)
    assert raised.value.field == field


def test_a_multi_fidelity_strategy_needs_a_fidelity():
    with pytest.raises(ConfigError) as raised:
        registry.validate({"name": "hyperband"}, None, has_fidelity=False)
    assert raised.value.field == "fidelity"


def test_every_option_comes_with_its_default():
    parsed = registry.parse({"name": "bohb", "sampler": "tpe", "seed": 4}, None, has_fidelity=True)
    assert parsed.seed == 4
    assert parsed.sampler == "tpe"
    # Options whose default depends on the study (brackets, min_points) stay absent.
    assert dict(parsed.options) == {
        "sampler": "tpe",
        "mode": "stop",
        "random_fraction": pytest.approx(1 / 3),
        "n_startup_trials": 10,
        "n_ei_candidates": 48,
        "prior_beta": 5.0,
        "prior_mode_first": True,
    }
    asha = registry.parse({"name": "asha"}, None, has_fidelity=True)
    assert asha.options == {"sampler": "random", "mode": "stop", "brackets": 1}
    median = registry.parse({"name": "grid"}, {"rule": "median"}, has_fidelity=False)
    assert median.options == {"grid_points": 5}
    assert median.early_stopping == {"rule": "median", "min_trials": 5, "warmup_steps": 0.0}


def test_build_fills_the_context_with_the_parsed_options():
    context = StudyContext(space=SPACE, direction="minimize", metric="loss", seed=1, options={})
    built = registry.build({"name": "tpe", "n_ei_candidates": 8}, None, context)
    assert built.sampler.context.options == {
        "n_startup_trials": 10,
        "n_ei_candidates": 8,
        "prior_beta": 5.0,
        "prior_mode_first": True,
    }
    ruled = registry.build({"name": "random"}, {"rule": "median", "min_trials": 2}, context)
    assert ruled.scheduler.context.options == {
        "rule": "median",
        "min_trials": 2,
        "warmup_steps": 0.0,
    }


def test_stored_settings_of_an_older_version_still_build():
    # Keys an older version stored without checking are dropped on read, not refused.
    stored = {"name": "asha", "seed": 3, "sed": 1, "random_fraction": 0.5, "mode": "pause"}
    parsed = registry.parse_stored(stored, None)
    assert parsed.options == {"sampler": "random", "mode": "pause", "brackets": 1}
    context = StudyContext(
        space=SPACE, direction="minimize", metric="loss", seed=3, options={}, fidelity=FIDELITY
    )
    assert registry.build(stored, None, context).scheduler.name == "asha"
    early = registry.parse_stored({"name": "random"}, {"rule": "median", "min_trial": 3})
    assert early.early_stopping == {"rule": "median", "min_trials": 5, "warmup_steps": 0.0}


def test_a_sampler_alone_keeps_its_own_options():
    parsed = registry.parse(
        {"name": "hyperband", "sampler": "tpe", "n_startup_trials": 3, "mode": "pause", "seed": 2},
        None,
        has_fidelity=True,
    )
    assert parsed.sampler_body() == {
        "name": "tpe",
        "seed": 2,
        "n_startup_trials": 3,
        "n_ei_candidates": 48,
        "prior_beta": 5.0,
        "prior_mode_first": True,
    }
    assert registry.parse(parsed.as_body(), None, has_fidelity=True) == parsed


def test_every_option_the_engine_reads_is_in_an_options_model():
    # A strategy that reads an option no model declares would never see it: the registry
    # refuses it on input and drops it from stored settings.
    read_pattern = re.compile(r"""options(?:\.get\(|\[)\s*["'](\w+)["']""")
    engine = Path(__file__).resolve().parents[2] / "app" / "engine"
    read = {
        name
        for path in engine.rglob("*.py")
        if path.name != "options.py"
        for name in read_pattern.findall(path.read_text())
    }
    models = [
        *registry.SAMPLER_OPTIONS.values(),
        *registry.SCHEDULER_OPTIONS.values(),
        *registry.RULE_OPTIONS.values(),
    ]
    declared = {name for model in models for name in model.model_fields}
    assert read, "no option reads found: the pattern is out of date"
    assert read <= declared, read - declared
