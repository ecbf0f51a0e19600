"""Priors: parsing and its 422 fields, the round trip, the density and the draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.errors import ConfigError
from app.engine.priors import (
    CATEGORICAL_WEIGHT,
    Prior,
    has_prior,
    mode_units,
    prior_log_pdf,
    prior_mode,
    sample_from_prior,
    sample_units,
)
from app.engine.space import SearchSpace

RAW = {
    "lr": {
        "type": "float",
        "low": 1e-5,
        "high": 1e-1,
        "scale": "log",
        "prior": {"value": 3e-4, "confidence": "high"},
    },
    "batch": {"type": "int", "low": 16, "high": 256, "step": 16, "prior": {"value": 64}},
    "opt": {
        "type": "categorical",
        "choices": ["adam", "sgd", "rmsprop"],
        "prior": {"value": "sgd", "confidence": "low"},
    },
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "epochs": {"type": "fixed", "value": 10},
}


def _space() -> SearchSpace:
    return SearchSpace.from_dict(RAW)


def test_priors_parse_default_to_medium_and_round_trip():
    space = _space()
    assert space["lr"].prior == Prior(3e-4, "high")
    assert space["batch"].prior == Prior(64, "medium")
    assert space["dropout"].prior is None
    assert space.to_dict()["batch"]["prior"] == {"value": 64, "confidence": "medium"}
    assert "prior" not in space.to_dict()["dropout"]
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert has_prior(space)
    assert not has_prior(SearchSpace.from_dict({"x": RAW["dropout"]}))


@pytest.mark.parametrize(
    ("param", "prior", "field"),
    [
        ("lr", {"value": 0.5}, "space.lr.prior.value"),
        ("lr", {"value": "high"}, "space.lr.prior.value"),
        ("batch", {"value": 20}, "space.batch.prior.value"),  # off the step grid
        ("batch", {"value": 64.5}, "space.batch.prior.value"),
        ("opt", {"value": "adagrad"}, "space.opt.prior.value"),
        ("opt", {"value": "sgd", "confidence": "certain"}, "space.opt.prior.confidence"),
        ("opt", {"value": "sgd", "weight": 2}, "space.opt.prior.weight"),
        ("opt", {"confidence": "low"}, "space.opt.prior.value"),
        ("opt", "sgd", "space.opt.prior"),
        ("epochs", {"value": 10}, "space.epochs.prior"),  # a fixed parameter has none
    ],
)
def test_an_invalid_prior_names_its_field(param, prior, field):
    raw = {name: dict(spec) for name, spec in RAW.items()}
    raw[param]["prior"] = prior
    with pytest.raises(ConfigError) as error:
        SearchSpace.from_dict(raw)
    assert error.value.field == field


def test_prior_density_is_a_density_that_peaks_at_the_value():
    space = _space()
    rng = np.random.default_rng(0)
    uniform = rng.random((200_000, len(space.searchable)))
    # A proper density over the unit cube: its mean under uniform draws is 1.
    assert np.exp(prior_log_pdf(space, uniform)).mean() == pytest.approx(1.0, abs=0.03)
    at_value = mode_units(space, rng)
    elsewhere = at_value.copy()
    elsewhere[0] = 0.95
    assert prior_log_pdf(space, at_value)[0] > prior_log_pdf(space, elsewhere)[0]
    # Inactive coordinates (NaN) and spaces without priors add nothing.
    inactive = np.full((1, len(space.searchable)), math.nan)
    assert prior_log_pdf(space, inactive)[0] == 0.0
    plain = SearchSpace.from_dict({"x": RAW["dropout"]})
    assert prior_log_pdf(plain, uniform[:10, :1]).tolist() == [0.0] * 10


def test_draws_follow_the_prior():
    space = _space()
    rng = np.random.default_rng(1)
    rows = sample_units(space, rng, 20_000)
    assert ((rows >= 0) & (rows <= 1)).all()
    lr_unit = space["lr"].to_unit(3e-4)
    assert np.median(rows[:, 0]) == pytest.approx(lr_unit, abs=0.02)
    # "high" is narrower than "medium".
    batch_unit = space["batch"].to_unit(64)
    assert np.abs(rows[:, 0] - lr_unit).mean() < np.abs(rows[:, 1] - batch_unit).mean()
    # A categorical's value weighs CATEGORICAL_WEIGHT times each other choice.
    choice = np.minimum(2, (rows[:, 2] * 3).astype(int))
    share = (choice == 1).mean()
    weight = CATEGORICAL_WEIGHT["low"]
    assert share == pytest.approx(weight / (weight + 2), abs=0.02)
    # No prior: uniform.
    assert rows[:, 3].mean() == pytest.approx(0.5, abs=0.02)
    config = sample_from_prior(space, rng)
    assert space.validate(config) == config


def test_the_prior_mode_is_the_users_config():
    space = _space()
    config = prior_mode(space, np.random.default_rng(2))
    assert config["lr"] == pytest.approx(3e-4)
    assert config["batch"] == 64
    assert config["opt"] == "sgd"
    assert config["epochs"] == 10
    assert space.validate(config) == config
