"""Priors through the API: stored and returned, refused with the field named, shown by
the plan, and used by tpe (its first trial runs the priors' values)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import API, ask
from tests.fixtures.studies import study_body

SPACE: dict[str, Any] = {
    "lr": {
        "type": "float",
        "low": 1e-5,
        "high": 1e-1,
        "scale": "log",
        "prior": {"value": 3e-4, "confidence": "high"},
    },
    "batch": {"type": "int", "low": 16, "high": 256, "step": 16, "prior": {"value": 64}},
    "act": {"type": "categorical", "choices": ["relu", "gelu"], "prior": {"value": "gelu"}},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def test_priors_are_stored_shown_by_the_plan_and_run_first(client):
    body = study_body(space=SPACE, strategy={"name": "tpe", "seed": 3})
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 201, response.text
    study = response.json()
    assert study["space"]["lr"]["prior"] == {"value": 3e-4, "confidence": "high"}
    assert study["space"]["batch"]["prior"] == {"value": 64, "confidence": "medium"}
    assert "prior" not in study["space"]["dropout"]

    plan = client.get(f"{API}/studies/{study['id']}/plan").json()
    assert {p["param"]: (p["value"], p["confidence"]) for p in plan["priors"]} == {
        "lr": (3e-4, "high"),
        "batch": (64, "medium"),
        "act": ("gelu", "medium"),
    }
    assert any("prior(x) ** (beta / n)" in note for note in plan["notes"])

    first = ask(client, study["id"])
    assert first["params"]["lr"] == pytest.approx(3e-4)
    assert first["params"]["batch"] == 64
    assert first["params"]["act"] == "gelu"


def test_a_study_without_priors_plans_none(client):
    space = {"x": {"type": "float", "low": 0, "high": 1}}
    study = client.post(f"{API}/studies", json=study_body(space=space)).json()
    assert client.get(f"{API}/studies/{study['id']}/plan").json()["priors"] == []


@pytest.mark.parametrize(
    ("param", "prior", "field"),
    [
        ("lr", {"value": 0.5}, "space.lr.prior.value"),
        ("batch", {"value": 20}, "space.batch.prior.value"),
        ("act", {"value": "tanh"}, "space.act.prior.value"),
        ("act", {"value": "gelu", "confidence": "sure"}, "space.act.prior.confidence"),
        ("act", {"value": "gelu", "extra": 1}, "space.act.prior.extra"),
    ],
)
def test_an_invalid_prior_is_a_422_naming_its_field(client, param, prior, field):
    space = {name: dict(spec) for name, spec in SPACE.items()}
    space[param]["prior"] = prior
    response = client.post(f"{API}/studies", json=study_body(space=space))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
