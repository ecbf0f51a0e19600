"""Samplers and schedulers through the API: decisions, reasons, resumes, completion, plan."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import API, ask, report, tell
from tests.fixtures.studies import study_body

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
    "layers": {"type": "int", "low": 1, "high": 4},
    "act": {"type": "categorical", "choices": ["relu", "tanh"]},
}
FIDELITY = {"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3}


def _study(client, **overrides: Any) -> dict[str, Any]:
    body = study_body(space=SPACE, **overrides)
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _events(client, trial_id: int) -> list[dict[str, Any]]:
    return client.get(f"{API}/trials/{trial_id}/events").json()["items"]


def test_asha_pause_resumes_the_same_trial_and_ends_the_study(client):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "pause", "seed": 1},
        fidelity=FIDELITY,
        limits={"max_trials": 3, "max_parallel_trials": 3},
    )
    trials = [ask(client, study["id"]) for _ in range(3)]
    assert [t["budget"] for t in trials] == [1, 1, 1]
    losses = {trials[0]["id"]: 0.5, trials[1]["id"]: 0.2, trials[2]["id"]: 0.9}
    for trial in trials:
        decision = report(
            client, trial["id"], [{"name": "loss", "step": 1, "value": losses[trial["id"]]}]
        )
        assert decision["decision"] == "pause"
        assert "paused at epoch 1 (rung 0)" in decision["reason"]

    # max_trials is reached, yet the best paused trial is promoted: same id, more budget.
    resumed = ask(client, study["id"])
    assert resumed["id"] == trials[1]["id"] and resumed["resume"] is True
    assert resumed["budget"] == 3 and resumed["state"] == "running"
    reasons = [e["reason"] for e in _events(client, resumed["id"])]
    assert any("resumed with budget 3 (was 1): promoted from rung 0" in r for r in reasons)

    assert (
        report(client, resumed["id"], [{"name": "loss", "step": 3, "value": 0.1}])["decision"]
        == "pause"
    )
    again = ask(client, study["id"])
    assert again["id"] == resumed["id"] and again["budget"] == 9
    report(client, again["id"], [{"name": "loss", "step": 9, "value": 0.05}])
    tell(client, again["id"])

    # Nothing else is promotable: the study ends, and paused trials end stopped.
    final = client.get(f"{API}/studies/{study['id']}").json()
    assert final["state"] == "completed", final
    assert "max_trials reached" in final["state_reason"]
    assert final["trial_counts"]["stopped"] == 2 and final["trial_counts"]["completed"] == 1
    assert client.post(f"{API}/studies/{study['id']}/trials").status_code == 410


def test_asha_stop_explains_its_decisions(client):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "stop", "seed": 1},
        fidelity=FIDELITY,
        limits={"max_trials": 6, "max_parallel_trials": 6},
    )
    trials = [ask(client, study["id"]) for _ in range(6)]
    assert {t["budget"] for t in trials} == {9}
    decisions = [
        report(client, t["id"], [{"name": "loss", "step": 1, "value": 0.1 * (i + 1)}])
        for i, t in enumerate(trials)
    ]
    assert decisions[0]["decision"] == "continue"
    stopped = [d for d in decisions if d["decision"] == "stop"]
    assert stopped, decisions
    assert "stopped at epoch 1 (rung 0): loss 0.6 > " in decisions[-1]["reason"]
    assert "the cutoff of rung 0 (top 2 of 6 trials, 1/3)" in decisions[-1]["reason"]
    events = _events(client, trials[-1]["id"])
    assert events[-1]["kind"] == "decision" and events[-1]["to_state"] == "stopped"
    kept = _events(client, trials[0]["id"])
    assert any(e["kind"] == "decision" and "continued at epoch 1" in e["reason"] for e in kept)
    got = client.get(f"{API}/trials/{trials[0]['id']}").json()
    assert got["rung"] == 0 and got["extra"]["rungs"] == {"0": 0.1} and got["extra"]["bracket"] == 0


def test_median_rule_beside_a_sampler(client):
    study = _study(
        client,
        strategy={"name": "tpe", "seed": 2},
        early_stopping={"rule": "median", "min_trials": 2},
        limits={"max_trials": 5, "max_parallel_trials": 5},
    )
    trials = [ask(client, study["id"]) for _ in range(3)]
    report(client, trials[0]["id"], [{"name": "loss", "step": s, "value": 1.0 / s} for s in (1, 2)])
    report(client, trials[1]["id"], [{"name": "loss", "step": s, "value": 0.8 / s} for s in (1, 2)])
    # Running trials do not count: the rule compares with finished trials' curves.
    early = report(client, trials[2]["id"], [{"name": "loss", "step": 1, "value": 5.0}])
    assert early["decision"] == "continue"
    tell(client, trials[0]["id"])
    tell(client, trials[1]["id"])
    decision = report(client, trials[2]["id"], [{"name": "loss", "step": 2, "value": 5.0}])
    assert decision["decision"] == "stop"
    assert decision["reason"].startswith("stopped at step 2: best loss so far 5 is worse than")
    assert "the median of 2 finished trials' running averages at step 2" in decision["reason"]


@pytest.mark.parametrize("name", ["tpe", "gp", "hyperband", "bohb"])
def test_every_strategy_runs_through_the_api(client, name):
    multi = name in ("hyperband", "bohb")
    # Only the model-based samplers read n_startup_trials; the others refuse it by name.
    startup = {} if multi else {"n_startup_trials": 2}
    study = _study(
        client,
        strategy={"name": name, "seed": 3, **startup},
        fidelity=FIDELITY if multi else None,
        limits={"max_trials": 4, "max_parallel_trials": 2},
    )
    for number in range(4):
        trial = ask(client, study["id"])
        budget = int(trial["budget"] or 1)
        decision = report(client, trial["id"], [{"name": "loss", "step": budget, "value": number}])
        if decision["decision"] == "continue":
            tell(client, trial["id"])


def test_max_budget_stops_handing_out_trials(client):
    study = _study(
        client,
        strategy={"name": "random", "seed": 1},
        fidelity=FIDELITY,
        limits={"max_trials": 50, "max_parallel_trials": 4, "max_budget": 18},
    )
    first, second = ask(client, study["id"]), ask(client, study["id"])
    assert first["budget"] == 9 and second["budget"] == 9
    refused = client.post(f"{API}/studies/{study['id']}/trials")
    assert refused.status_code == 409
    tell(client, first["id"], value=1.0)
    tell(client, second["id"], value=2.0)
    final = client.get(f"{API}/studies/{study['id']}").json()
    assert final["state"] == "completed" and "max_budget reached (18 of 18" in final["state_reason"]


def test_plan_previews_the_budget(client):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "pause", "seed": 1},
        fidelity={"param": "epoch", "min": 1, "max": 27, "reduction_factor": 3},
        limits={"max_trials": 27, "max_parallel_trials": 4},
    )
    plan = client.get(f"{API}/studies/{study['id']}/plan").json()
    assert plan["scheduler"] == "asha" and plan["mode"] == "pause"
    rungs = plan["brackets"][0]["rungs"]
    assert [(r["budget"], r["trials"]) for r in rungs] == [(1, 27), (3, 9), (9, 3), (27, 1)]
    assert plan["expected_budget"] == 27 * 1 + 9 * 2 + 3 * 6 + 1 * 18
    assert plan["worst_case_budget"] == 27 * 27

    hb = _study(
        client,
        strategy={"name": "hyperband", "seed": 1},
        fidelity={"param": "epoch", "min": 1, "max": 27, "reduction_factor": 3},
        limits={"max_trials": 40, "max_budget": 300},
    )
    plan = client.get(f"{API}/studies/{hb['id']}/plan").json()
    assert len(plan["brackets"]) == 4
    assert sum(b["trials"] for b in plan["brackets"]) == 40
    assert plan["worst_case_budget"] == 300

    plain = _study(client, strategy={"name": "gp", "seed": 1}, limits={"max_trials": 7})
    plan = client.get(f"{API}/studies/{plain['id']}/plan").json()
    assert plan["brackets"][0]["trials"] == 7 and plan["expected_budget"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"strategy": {"name": "asha", "mode": "sometimes"}, "fidelity": FIDELITY},
            "strategy.mode",
        ),
        ({"strategy": {"name": "hyperband"}}, "fidelity"),
        (
            {"strategy": {"name": "bohb", "sampler": "nope"}, "fidelity": FIDELITY},
            "strategy.sampler",
        ),
        ({"early_stopping": {"rule": "median", "min_trials": -1}}, "early_stopping.min_trials"),
        ({"early_stopping": {"rule": "forecast", "threshold": 2}}, "early_stopping.threshold"),
        ({"early_stopping": {"rule": "forecast", "min_point": 4}}, "early_stopping.min_point"),
        (
            {
                "strategy": {"name": "asha"},
                "fidelity": FIDELITY,
                "early_stopping": {"rule": "median"},
            },
            "early_stopping",
        ),
    ],
)
def test_bad_strategy_settings_name_the_field(client, overrides, field):
    response = client.post(f"{API}/studies", json=study_body(space=SPACE, **overrides))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_forecast_rule_stops_through_the_api_and_says_why(client):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "stop", "seed": 1},
        fidelity=FIDELITY,
        early_stopping={"rule": "forecast"},
        limits={"max_trials": 4, "max_parallel_trials": 1},
    )
    first = ask(client, study["id"])
    curve = [{"name": "loss", "step": s, "value": 0.1 + 0.5 / s} for s in range(1, 10)]
    report(client, first["id"], curve)
    tell(client, first["id"])
    second = ask(client, study["id"])
    # Best at rung 0 (asha keeps it), then levelling out far above the first: the
    # forecast stops it between rungs.
    points = [0.4 + 0.05 / s for s in (1, 1.5, 2, 2.5)]
    decision = None
    for step, value in zip((1, 1.5, 2, 2.5), points, strict=True):
        decision = report(client, second["id"], [{"name": "loss", "step": step, "value": value}])
        if decision["decision"] != "continue":
            break
    assert decision is not None and decision["decision"] == "stop"
    assert "forecast at step 9" in decision["reason"] and "90 % interval" in decision["reason"]
    trial = client.get(f"{API}/trials/{second['id']}").json()
    assert trial["state"] == "stopped"
    assert trial["extra"]["forecast"]["steps"][-1] == 9
