"""Metric points: idempotent batches, NaN and infinities, cursors and aggregation."""

from __future__ import annotations

from tests.api.helpers import API, ask, create_study, get_study, report, tell


def _points(client, trial_id: int, **params) -> dict:
    response = client.get(f"{API}/trials/{trial_id}/metrics", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_resending_a_batch_changes_nothing(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    batch = [
        {"name": "loss", "step": 1, "value": 0.9},
        {"name": "loss", "step": 2, "value": 0.8},
        {"name": "acc", "step": 1, "value": 0.1},
    ]
    report(client, trial["id"], batch)
    report(client, trial["id"], batch)
    # Same (name, step) with another value: the first value stays.
    report(client, trial["id"], [{"name": "loss", "step": 2, "value": 0.0}])
    items = _points(client, trial["id"])["items"]
    assert len(items) == 3
    assert {(p["name"], p["step"]): p["value"] for p in items} == {
        ("loss", 1): 0.9,
        ("loss", 2): 0.8,
        ("acc", 1): 0.1,
    }


def test_duplicates_inside_one_batch_keep_the_first(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(
        client,
        trial["id"],
        [{"name": "loss", "step": 1, "value": 0.5}, {"name": "loss", "step": 1, "value": 0.7}],
    )
    items = _points(client, trial["id"])["items"]
    assert [(p["step"], p["value"]) for p in items] == [(1, 0.5)]


def test_nan_and_infinities_are_stored_and_returned_faithfully(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(
        client,
        trial["id"],
        [
            {"name": "loss", "step": 1, "value": "NaN"},
            {"name": "loss", "step": 2, "value": "Infinity"},
            {"name": "loss", "step": 3, "value": "-Infinity"},
            {"name": "loss", "step": 4, "value": 1e308},
            {"name": "loss", "step": 5, "value": -0.0},
        ],
    )
    values = [p["value"] for p in _points(client, trial["id"])["items"]]
    assert values == ["NaN", "Infinity", "-Infinity", 1e308, -0.0]


def test_json_nan_literals_are_accepted(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    response = client.post(
        f"{API}/trials/{trial['id']}/metrics",
        content=b'[{"name": "loss", "step": 1, "value": NaN}, '
        b'{"name": "loss", "step": 2, "value": -Infinity}]',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    values = [p["value"] for p in _points(client, trial["id"])["items"]]
    assert values == ["NaN", "-Infinity"]


def test_non_finite_values_are_never_best(client):
    study = create_study(client, limits={"max_trials": 10, "max_parallel_trials": 10})
    for value in ("NaN", "-Infinity"):
        trial = ask(client, study["id"])
        told = tell(client, trial["id"], value=value)
        assert told["value"] == value and told["state"] == "completed"
    assert get_study(client, study["id"])["best_value"] is None
    finite = ask(client, study["id"])
    tell(client, finite["id"], value=3.0)
    trial = ask(client, study["id"])
    tell(client, trial["id"], value="-Infinity")
    got = get_study(client, study["id"])
    assert got["best_value"] == 3.0 and got["best_trial_id"] == finite["id"]


def test_non_finite_objective_points_are_never_best(client):
    study = create_study(
        client, objective={"metric": "loss", "direction": "minimize", "aggregate": "best"}
    )
    trial = ask(client, study["id"])
    report(
        client,
        trial["id"],
        [
            {"name": "loss", "step": 1, "value": "-Infinity"},
            {"name": "loss", "step": 2, "value": 0.4},
            {"name": "loss", "step": 3, "value": "NaN"},
        ],
    )
    assert tell(client, trial["id"])["value"] == 0.4


def test_a_step_must_be_finite(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    response = client.post(
        f"{API}/trials/{trial['id']}/metrics", json=[{"name": "loss", "step": "NaN", "value": 1}]
    )
    assert response.status_code == 422 and response.json()["field"] == "0.step"


def test_since_returns_only_newer_points(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": s, "value": s} for s in range(3)])
    first = _points(client, trial["id"])
    assert len(first["items"]) == 3
    unchanged = _points(client, trial["id"], since=first["cursor"])
    assert unchanged["items"] == [] and unchanged["cursor"] == first["cursor"]
    report(client, trial["id"], [{"name": "loss", "step": s, "value": s} for s in range(2, 5)])
    report(client, trial["id"], [{"name": "acc", "step": 1, "value": 0.5}])
    newer = _points(client, trial["id"], since=first["cursor"])
    assert [(p["name"], p["step"]) for p in newer["items"]] == [
        ("loss", 3),
        ("loss", 4),
        ("acc", 1),
    ]
    only_loss = _points(client, trial["id"], since=first["cursor"], name="loss")
    assert [p["step"] for p in only_loss["items"]] == [3, 4]
    paged = _points(client, trial["id"], limit=2)
    rest = _points(client, trial["id"], since=paged["cursor"])
    assert len(paged["items"]) == 2 and len(rest["items"]) == 4


def test_complete_without_value_uses_the_last_point(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    # Out of order on purpose: "last" means the highest step, not the last sent.
    report(client, trial["id"], [{"name": "loss", "step": 3, "value": 0.3}])
    report(client, trial["id"], [{"name": "loss", "step": 1, "value": 0.1}])
    report(client, trial["id"], [{"name": "other", "step": 9, "value": 9.0}])
    assert tell(client, trial["id"])["value"] == 0.3


def test_complete_without_value_uses_the_best_point(client):
    for direction, expected in (("minimize", 0.1), ("maximize", 0.7)):
        study = create_study(
            client, objective={"metric": "loss", "direction": direction, "aggregate": "best"}
        )
        trial = ask(client, study["id"])
        report(
            client,
            trial["id"],
            [{"name": "loss", "step": s, "value": v} for s, v in [(1, 0.5), (2, 0.1), (3, 0.7)]],
        )
        assert tell(client, trial["id"])["value"] == expected


def test_complete_without_value_or_points_is_422(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "acc", "step": 1, "value": 0.5}])
    response = client.post(f"{API}/trials/{trial['id']}/complete", json={})
    assert response.status_code == 422 and response.json()["field"] == "value"
    assert client.get(f"{API}/trials/{trial['id']}").json()["state"] == "running"


def test_report_tracks_the_last_objective_step(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": 4, "value": 1.0}])
    report(client, trial["id"], [{"name": "loss", "step": 2, "value": 1.0}])
    assert client.get(f"{API}/trials/{trial['id']}").json()["last_step"] == 4


def test_report_on_a_finished_trial_answers_stop(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    tell(client, trial["id"], value=1.0)
    decision = report(client, trial["id"], [{"name": "loss", "step": 1, "value": 1.0}])
    assert decision["decision"] == "stop" and "completed" in decision["reason"]


def test_empty_batch_is_a_no_op(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    assert report(client, trial["id"], [])["decision"] == "continue"
    assert _points(client, trial["id"])["items"] == []


def test_metric_names_and_values_are_stored_verbatim(client):
    # PostgreSQL receives a batch as array literals: quotes, backslashes, commas, braces,
    # spaces and the word NULL must come back as sent, and every double exactly.
    study = create_study(client)
    trial = ask(client, study["id"])
    names = ['say "hi"', "back\\slash", "a,b", "{x}", "NULL", " padded ", "ünïcode", "tab\there"]
    values = [5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1e-300, 123456789.12345678, -0.0]
    batch = [
        {"name": name, "step": step, "value": values[step % len(values)]}
        for step, name in enumerate(names)
    ]
    report(client, trial["id"], batch)
    items = _points(client, trial["id"])["items"]
    assert [(p["name"], p["step"], p["value"]) for p in items] == [
        (p["name"], p["step"], p["value"]) for p in batch
    ]


def test_report_on_an_unknown_trial_is_404_and_stores_nothing(client):
    response = client.post(
        f"{API}/trials/999999/metrics", json=[{"name": "loss", "step": 1, "value": 1.0}]
    )
    assert response.status_code == 404 and response.json()["field"] == "trial_id"


def test_report_on_a_trial_of_a_stopped_study_answers_stop_with_the_reason(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    stopped = client.patch(f"{API}/studies/{study['id']}", json={"state": "stopped"})
    assert stopped.status_code == 200, stopped.text
    decision = report(client, trial["id"], [{"name": "loss", "step": 1, "value": 1.0}])
    assert decision["decision"] == "stop"
    assert decision["reason"].startswith("the study is stopped: stopped by")
    # The points still count: a runner's last batch is never lost.
    assert len(_points(client, trial["id"])["items"]) == 1


def test_report_on_a_finished_trial_leaves_its_last_step(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    report(client, trial["id"], [{"name": "loss", "step": 2, "value": 1.0}])
    tell(client, trial["id"], value=1.0)
    report(client, trial["id"], [{"name": "loss", "step": 7, "value": 1.0}])
    assert client.get(f"{API}/trials/{trial['id']}").json()["last_step"] == 2
