"""Ask, report and tell: user configs, imported results, limits, and the strategies."""

from __future__ import annotations

import time

import pytest

from app.engine.space import SearchSpace
from tests.api.helpers import API, ask, create_study, get_study, report, run_trial, tell
from tests.fixtures.studies import SEED_SPACE


def test_ask_returns_a_running_trial_in_the_space(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    assert trial["number"] == 0 and trial["state"] == "running" and trial["budget"] is None
    assert trial["resume"] is False and trial["source"] == "suggested"
    SearchSpace.from_dict(SEED_SPACE).validate(trial["params"])
    assert trial["params"]["epochs"] == 27
    assert client.get(f"{API}/trials/{trial['id']}").json()["params"] == trial["params"]


def test_an_empty_json_body_is_an_ask(client):
    study = create_study(client)
    response = client.post(f"{API}/studies/{study['id']}/trials", json={})
    assert response.status_code == 201 and response.json()["source"] == "suggested"


def test_user_config_is_validated_and_run(client):
    study = create_study(client)
    params = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}
    trial = ask(client, study["id"], {"params": params})
    assert trial["source"] == "user" and trial["state"] == "running"
    assert trial["params"] == {**params, "epochs": 27}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lr": 1.0, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}, "params.lr"),
        ({"lr": 0.01, "momentum": 0.95, "batch_size": 33, "optimizer": "sgd"}, "params.batch_size"),
        ({"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "rms"}, "params.optimizer"),
        ({"lr": 0.01, "momentum": 0.95, "batch_size": 32}, "params.optimizer"),
        ({"lr": "x", "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}, "params.lr"),
        (
            {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd", "epochs": 3},
            "params.epochs",
        ),
        (
            {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd", "wd": 0.1},
            "params.wd",
        ),
    ],
)
def test_user_config_outside_the_space_is_422_naming_the_param(client, params, field):
    study = create_study(client)
    response = client.post(f"{API}/studies/{study['id']}/trials", json={"params": params})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert get_study(client, study["id"])["n_trials"] == 0


def test_imported_result_is_finished_and_counts_as_best(client):
    study = create_study(client)
    params = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}
    imported = ask(client, study["id"], {"params": params, "value": 0.3, "state": "completed"})
    assert imported["state"] == "completed" and imported["value"] == 0.3
    assert imported["source"] == "imported" and imported["finished_at"] is not None
    failed = ask(client, study["id"], {"params": params, "state": "failed"})
    assert failed["state"] == "failed"
    got = get_study(client, study["id"])
    assert got["best_value"] == 0.3 and got["best_trial_id"] == imported["id"]
    assert got["trial_counts"]["completed"] == 1 and got["trial_counts"]["failed"] == 1


def test_imported_result_with_curves_aggregates_its_value(client):
    study = create_study(client)
    params = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}
    points = [{"name": "loss", "step": s, "value": v} for s, v in [(1, 0.9), (2, 0.4)]]
    imported = ask(client, study["id"], {"params": params, "state": "completed", "metrics": points})
    assert imported["value"] == 0.4
    stored = client.get(f"{API}/trials/{imported['id']}/metrics").json()["items"]
    assert [(p["step"], p["value"]) for p in stored] == [(1, 0.9), (2, 0.4)]


def test_imported_result_needs_params_and_a_value(client):
    study = create_study(client)
    no_params = client.post(f"{API}/studies/{study['id']}/trials", json={"value": 1.0})
    assert no_params.status_code == 422 and no_params.json()["field"] == "params"
    params = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd"}
    no_value = client.post(
        f"{API}/studies/{study['id']}/trials", json={"params": params, "state": "completed"}
    )
    assert no_value.status_code == 422 and no_value.json()["field"] == "value"


def test_max_parallel_trials_gives_409_with_retry_after(client):
    study = create_study(client, limits={"max_trials": 10, "max_parallel_trials": 2})
    first = ask(client, study["id"])
    ask(client, study["id"])
    refused = client.post(f"{API}/studies/{study['id']}/trials")
    assert refused.status_code == 409
    assert refused.json()["field"] == "limits.max_parallel_trials"
    assert int(refused.headers["Retry-After"]) > 0
    tell(client, first["id"], value=1.0)
    assert ask(client, study["id"])["number"] == 2


def test_max_trials_ends_the_study_with_410(client):
    study = create_study(client, limits={"max_trials": 2, "max_parallel_trials": 2})
    first = ask(client, study["id"])
    second = ask(client, study["id"])
    # Every trial is handed out but some still run: come back later, not gone.
    waiting = client.post(f"{API}/studies/{study['id']}/trials")
    assert waiting.status_code == 409 and "Retry-After" in waiting.headers
    tell(client, first["id"], value=1.0)
    tell(client, second["id"], value=2.0)
    gone = client.post(f"{API}/studies/{study['id']}/trials")
    assert gone.status_code == 410
    assert gone.json()["field"] == "state" and "max_trials" in gone.json()["detail"]
    got = get_study(client, study["id"])
    assert got["state"] == "completed" and "max_trials" in got["state_reason"]
    assert got["n_trials"] == 2


def test_target_value_ends_the_study(client):
    study = create_study(
        client,
        limits={"max_trials": 100, "max_parallel_trials": 2, "target_value": 0.1},
    )
    run_trial(client, study["id"], 0.5)
    other = ask(client, study["id"])
    run_trial(client, study["id"], 0.05)
    got = get_study(client, study["id"])
    assert got["state"] == "completed" and "target_value" in got["state_reason"]
    # The trial still running when the target was reached is cancelled.
    assert client.get(f"{API}/trials/{other['id']}").json()["state"] == "cancelled"
    assert client.post(f"{API}/studies/{study['id']}/trials").status_code == 410


def test_target_value_for_maximize(client):
    study = create_study(
        client,
        objective={"metric": "acc", "direction": "maximize"},
        limits={"max_trials": 100, "target_value": 0.9},
    )
    run_trial(client, study["id"], 0.5)
    assert get_study(client, study["id"])["state"] == "running"
    run_trial(client, study["id"], 0.95)
    assert get_study(client, study["id"])["state"] == "completed"
    assert client.post(f"{API}/studies/{study['id']}/trials").status_code == 410


def test_max_trials_without_improvement_ends_the_study(client):
    study = create_study(client, limits={"max_trials": 100, "max_trials_without_improvement": 2})
    run_trial(client, study["id"], 1.0)
    run_trial(client, study["id"], 0.5)
    run_trial(client, study["id"], 0.7)
    assert get_study(client, study["id"])["state"] == "running"
    run_trial(client, study["id"], 0.6)
    got = get_study(client, study["id"])
    assert got["state"] == "completed" and "without" in got["state_reason"]
    assert got["best_value"] == 0.5
    assert client.post(f"{API}/studies/{study['id']}/trials").status_code == 410


@pytest.mark.slow
def test_max_runtime_ends_the_study(client):
    # Seconds, not tenths: on a busy machine creating the study and the first ask can
    # take longer than a tiny limit.
    study = create_study(client, limits={"max_trials": 100, "max_runtime_s": 3})
    created = time.monotonic()
    ask(client, study["id"])
    time.sleep(max(0.0, 3.2 - (time.monotonic() - created)))
    gone = client.post(f"{API}/studies/{study['id']}/trials")
    assert gone.status_code == 410 and "max_runtime_s" in gone.json()["detail"]


def test_tell_updates_the_best_value_by_direction(client):
    study = create_study(client, objective={"metric": "acc", "direction": "maximize"})
    run_trial(client, study["id"], 0.5)
    best = run_trial(client, study["id"], 0.8)
    run_trial(client, study["id"], 0.7)
    got = get_study(client, study["id"])
    assert got["best_value"] == 0.8 and got["best_trial_id"] == best["id"]


def test_tell_failed_records_the_error(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    failed = tell(client, trial["id"], state="failed", error="CUDA out of memory")
    assert failed["state"] == "failed" and failed["error"] == "CUDA out of memory"
    assert get_study(client, study["id"])["best_value"] is None


def test_tell_twice_keeps_the_first_verdict(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    tell(client, trial["id"], value=0.5)
    again = tell(client, trial["id"], value=0.1)
    assert again["value"] == 0.5 and again["state"] == "completed"
    assert get_study(client, study["id"])["best_value"] == 0.5


def test_tell_stores_the_last_points_and_log_chunk_sent_with_it(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": 1, "value": 0.9}])
    client.post(f"{API}/trials/{trial['id']}/logs", json={"offset": 0, "text": "epoch 1\n"})
    body = {
        "metrics": [
            {"name": "loss", "step": 2, "value": 0.4},
            {"name": "acc", "step": 2, "value": 1},
        ],
        "log": {"offset": 8, "text": "epoch 2\n"},
    }
    told = tell(client, trial["id"], **body)
    # The value is the last step's, from a point that came with the tell itself.
    assert told["state"] == "completed" and told["value"] == 0.4
    assert get_study(client, study["id"])["best_value"] == 0.4
    # Sent again (a retried request): nothing is stored twice.
    tell(client, trial["id"], **body)
    points = client.get(f"{API}/trials/{trial['id']}/metrics").json()["items"]
    assert sorted((p["name"], p["step"], p["value"]) for p in points) == [
        ("acc", 2.0, 1.0),
        ("loss", 1.0, 0.9),
        ("loss", 2.0, 0.4),
    ]
    log = client.get(f"{API}/trials/{trial['id']}/logs").json()
    assert log == {"offset": 0, "next_offset": 16, "text": "epoch 1\nepoch 2\n", "complete": True}


def test_a_refused_tell_stores_none_of_its_points_or_log(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    response = client.post(
        f"{API}/trials/{trial['id']}/complete",
        json={
            "metrics": [{"name": "acc", "step": 1, "value": 1}],
            "log": {"offset": 0, "text": "x\n"},
        },
    )
    # No point of the objective, no value: the runner sends them apart and fails the trial.
    assert response.status_code == 422 and response.json()["field"] == "value"
    assert client.get(f"{API}/trials/{trial['id']}/metrics").json()["items"] == []
    assert client.get(f"{API}/trials/{trial['id']}/logs").json()["text"] == ""


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"metrics": [{"name": "", "step": 1, "value": 1}]}, "metrics"),
        ({"metrics": [{"name": "loss", "step": "Infinity", "value": 1}]}, "metrics"),
        ({"log": {"offset": -1, "text": "x"}}, "log"),
    ],
)
def test_a_tell_with_bad_points_or_log_is_422_naming_them(client, extra, field):
    trial = ask(client, create_study(client)["id"])
    response = client.post(f"{API}/trials/{trial['id']}/complete", json={"value": 1, **extra})
    assert response.status_code == 422 and response.json()["field"].startswith(field)
    assert client.get(f"{API}/trials/{trial['id']}").json()["state"] == "running"


def test_unknown_trial_and_study_are_404(client):
    assert client.post(f"{API}/studies/999/trials").status_code == 404
    for path in ("metrics", "complete", "heartbeat"):
        response = client.post(f"{API}/trials/999/{path}", json=[] if path == "metrics" else {})
        assert response.status_code == 404 and response.json()["field"] == "trial_id"
    assert client.get(f"{API}/trials/999").status_code == 404


# Strategies ---------------------------------------------------------------------------

GRID_SPACE = {
    "depth": {"type": "int", "low": 1, "high": 3},
    "act": {"type": "categorical", "choices": ["relu", "gelu"]},
    "epochs": {"type": "fixed", "value": 5},
}


def test_grid_uses_each_point_once_and_caps_max_trials(client):
    study = create_study(
        client,
        space=GRID_SPACE,
        strategy={"name": "grid", "seed": 1},
        limits={"max_trials": 100, "max_parallel_trials": 1},
    )
    seen = []
    for _ in range(6):
        trial = ask(client, study["id"])
        seen.append((trial["params"]["depth"], trial["params"]["act"]))
        tell(client, trial["id"], value=float(len(seen)))
    assert sorted(seen) == sorted((d, a) for d in (1, 2, 3) for a in ("relu", "gelu"))
    gone = client.post(f"{API}/studies/{study['id']}/trials")
    assert gone.status_code == 410
    got = get_study(client, study["id"])
    assert got["state"] == "completed" and "6 grid points" in got["state_reason"]


def test_grid_skips_points_taken_by_user_configs(client):
    study = create_study(
        client,
        space=GRID_SPACE,
        strategy={"name": "grid", "seed": 1},
        limits={"max_trials": 100, "max_parallel_trials": 10},
    )
    ask(client, study["id"], {"params": {"depth": 2, "act": "gelu"}})
    configs = [ask(client, study["id"])["params"] for _ in range(5)]
    assert {"depth": 2, "act": "gelu", "epochs": 5} not in configs
    assert len({(c["depth"], c["act"]) for c in configs}) == 5


def test_grid_points_sets_the_values_of_a_float(client):
    study = create_study(
        client,
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        strategy={"name": "grid", "grid_points": 3},
        limits={"max_trials": 10, "max_parallel_trials": 10},
    )
    values = sorted(ask(client, study["id"])["params"]["x"] for _ in range(3))
    assert values == [0.0, 0.5, 1.0]
    waiting = client.post(f"{API}/studies/{study['id']}/trials")
    assert waiting.status_code == 409


def test_grid_with_max_trials_below_the_grid_size(client):
    study = create_study(
        client,
        space=GRID_SPACE,
        strategy={"name": "grid"},
        limits={"max_trials": 2, "max_parallel_trials": 1},
    )
    run_trial(client, study["id"], 1.0)
    run_trial(client, study["id"], 2.0)
    gone = client.post(f"{API}/studies/{study['id']}/trials")
    assert gone.status_code == 410 and "max_trials" in gone.json()["detail"]


def test_sobol_configs_lie_in_the_space_and_differ(client):
    study = create_study(
        client,
        strategy={"name": "sobol", "seed": 3},
        limits={"max_trials": 8, "max_parallel_trials": 8},
    )
    space = SearchSpace.from_dict(SEED_SPACE)
    configs = [ask(client, study["id"])["params"] for _ in range(8)]
    for config in configs:
        space.validate(config)
    assert len({c["lr"] for c in configs}) == 8


def test_random_is_reproducible_under_a_seed(client):
    def configs(seed: int) -> list[dict]:
        study = create_study(
            client,
            strategy={"name": "random", "seed": seed},
            limits={"max_trials": 5, "max_parallel_trials": 5},
        )
        return [ask(client, study["id"])["params"] for _ in range(5)]

    first, again, other = configs(11), configs(11), configs(12)
    assert first == again
    assert first != other
    assert len({c["lr"] for c in first}) == 5


def test_unknown_strategy_is_422(client):
    response = client.post(
        f"{API}/studies",
        json={
            "name": "s",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": SEED_SPACE,
            "strategy": {"name": "magic"},
        },
    )
    assert response.status_code == 422 and response.json()["field"] == "strategy.name"
