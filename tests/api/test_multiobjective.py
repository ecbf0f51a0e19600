"""Several objectives and constraints through the API: values from `tell` or from metric
points, the Pareto set, the hypervolume and its history, constraint reports, 422s."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.helpers import API, ask, create_study, get_study, report, tell

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
TWO = [
    {"metric": "acc", "direction": "maximize"},
    {"metric": "latency_ms", "direction": "minimize"},
]


def mo_study(client, **overrides):
    body = {"objectives": TWO, "space": SPACE, "limits": {"max_trials": 50}}
    body.update(overrides)
    body.setdefault("objective", None)
    if body["objective"] is None:
        del body["objective"]
    response = client.post(f"{API}/studies", json={"name": "mo", **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_objectives_are_stored_and_read_back(client):
    study = mo_study(client, reference_point=[0.0, 100.0])
    assert [o["metric"] for o in study["objectives"]] == ["acc", "latency_ms"]
    assert study["objective"]["metric"] == "acc"  # the first, for single-objective readers
    assert study["constraints"] == [] and study["reference_point"] == [0.0, 100.0]
    single = create_study(client)
    assert [o["metric"] for o in single["objectives"]] == ["loss"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"objectives": [TWO[0], TWO[0]]}, "objectives.1.metric"),
        ({"reference_point": [1.0]}, "reference_point"),
        ({"constraints": [{"metric": "acc", "op": "<=", "value": 1}]}, "constraints.0.metric"),
        ({"constraints": [{"metric": "mem", "op": "<", "value": 1}]}, "constraints.0.op"),
        ({"strategy": {"name": "gp"}}, "strategy.name"),
        ({"limits": {"target_value": 0.9}}, "limits.target_value"),
        ({"objective": {"metric": "other", "direction": "minimize"}}, "objectives"),
    ],
)
def test_bad_objectives_are_422_naming_the_field(client, extra, field):
    body = {"name": "bad", "objectives": TWO, "space": SPACE, **extra}
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"].endswith(field), response.json()


def test_values_from_tell_and_from_points_and_the_pareto_set(client):
    study = mo_study(client, strategy={"name": "nsga2", "seed": 3})
    sid = study["id"]
    results = [(0.9, 30.0), (0.8, 10.0), (0.7, 20.0), (0.95, 50.0)]  # (0.7, 20) is dominated
    ids = []
    for i, (acc, latency) in enumerate(results):
        trial = ask(client, sid)
        ids.append(trial["id"])
        if i % 2:
            tell(client, trial["id"], values=[acc, latency])
        else:
            # From points: acc's last point and latency's last point.
            report(
                client,
                trial["id"],
                [
                    {"name": "acc", "step": 1, "value": acc - 0.1},
                    {"name": "acc", "step": 2, "value": acc},
                    {"name": "latency_ms", "step": 2, "value": latency},
                ],
            )
            told = tell(client, trial["id"])
            assert told["values"] == [acc, latency] and told["value"] == acc
    front = client.get(f"{API}/studies/{sid}/pareto").json()
    assert sorted(t["id"] for t in front["trials"]) == sorted([ids[0], ids[1], ids[3]])
    assert all(t["is_pareto"] for t in front["trials"])
    assert front["reference_point_source"] == "derived"
    # Derived: worst + 10% of the range per objective (acc maximized: below the worst).
    assert front["reference_point"] == pytest.approx([0.7 - 0.025, 50 + 4.0])
    assert front["hypervolume"] > 0
    listing = client.get(f"{API}/studies/{sid}/trials").json()["items"]
    flags = {t["id"]: t["is_pareto"] for t in listing}
    assert flags == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: True}
    history = client.get(f"{API}/studies/{sid}/hypervolume").json()
    volumes = [p["hypervolume"] for p in history["points"]]
    assert [p["number"] for p in history["points"]] == [0, 1, 2, 3]
    assert volumes == sorted(volumes) and volumes[-1] == pytest.approx(front["hypervolume"])
    assert get_study(client, sid)["best_value"] is None  # several objectives: no single best

    text = client.get(f"{API}/studies/{sid}/trials.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["is_pareto"] for r in rows] == ["True", "True", "False", "True"]
    assert rows[1]["values_latency_ms"] == "10.0"


def test_tell_with_the_wrong_number_of_values_is_422(client):
    sid = mo_study(client)["id"]
    trial = ask(client, sid)
    response = client.post(f"{API}/trials/{trial['id']}/complete", json={"values": [1.0]})
    assert response.status_code == 422 and response.json()["field"] == "values"
    response = client.post(f"{API}/trials/{trial['id']}/complete", json={"value": 1.0})
    assert response.status_code == 422 and response.json()["field"] == "values"


def test_constraints_infeasible_trials_are_never_best_nor_on_the_front(client):
    study = create_study(
        client,
        space=SPACE,
        constraints=[{"metric": "memory_gib", "op": "<=", "value": 24}],
    )
    sid = study["id"]
    good = ask(client, sid)
    report(client, good["id"], [{"name": "memory_gib", "step": 1, "value": 20}])
    tell(client, good["id"], value=0.5)
    bad = ask(client, sid)
    report(client, bad["id"], [{"name": "memory_gib", "step": 1, "value": 30}])
    told = tell(client, bad["id"], value=0.1)  # better loss, but over the memory limit
    assert told["feasible"] is False
    assert told["constraints"] == [
        {"metric": "memory_gib", "op": "<=", "limit": 24.0, "value": 30.0, "violation": 6.0}
    ]
    assert get_study(client, sid)["best_value"] == 0.5
    front = client.get(f"{API}/studies/{sid}/pareto").json()
    assert [t["id"] for t in front["trials"]] == [good["id"]]
    read = client.get(f"{API}/trials/{good['id']}").json()
    assert read["feasible"] is True and read["is_pareto"] is True and read["values"] == [0.5]


def test_three_objectives_hypervolume_with_a_given_reference(client):
    objectives = [{"metric": m, "direction": "minimize"} for m in ("a", "b", "c")]
    sid = mo_study(client, objectives=objectives, reference_point=[1.0, 1.0, 1.0])["id"]
    for values in ([0.5, 0.5, 0.5], [0.0, 0.9, 0.9]):
        tell(client, ask(client, sid)["id"], values=values)
    front = client.get(f"{API}/studies/{sid}/pareto").json()
    assert front["reference_point_source"] == "given"
    # 0.125 + 0.01 - overlap (0.5*0.1*0.1 = 0.005)
    assert front["hypervolume"] == pytest.approx(0.125 + 0.01 - 0.005)


def test_asha_stops_a_dominated_trial_by_every_objective(client):
    objectives = [
        {"metric": "f0", "direction": "minimize"},
        {"metric": "f1", "direction": "minimize"},
    ]
    sid = mo_study(
        client,
        objectives=objectives,
        strategy={"name": "asha", "seed": 1},
        fidelity={"param": "epochs", "min": 1, "max": 9, "reduction_factor": 3},
        limits={"max_trials": 10, "max_parallel_trials": 10},
    )["id"]
    answers = []
    for f0, f1 in [(0.1, 0.9), (0.9, 0.1), (0.5, 0.5), (0.95, 0.95)]:
        trial = ask(client, sid)
        answers.append(
            report(
                client,
                trial["id"],
                [{"name": "f0", "step": 1, "value": f0}, {"name": "f1", "step": 1, "value": f1}],
            )
        )
    assert answers[0]["decision"] == "continue"
    assert answers[3]["decision"] == "stop"
    assert "non-dominated rank (front 1)" in answers[3]["reason"]


def test_non_finite_values_are_kept_and_never_on_the_front(client):
    sid = mo_study(client)["id"]
    nan_trial = tell(client, ask(client, sid)["id"], values=["NaN", 5.0])
    assert nan_trial["values"] == ["NaN", 5.0] and nan_trial["is_pareto"] is False
    fine = tell(client, ask(client, sid)["id"], values=[0.5, "Infinity"])
    assert fine["values"] == [0.5, "Infinity"]
    good = tell(client, ask(client, sid)["id"], values=[0.5, 5.0])
    front = client.get(f"{API}/studies/{sid}/pareto").json()
    assert [t["id"] for t in front["trials"]] == [good["id"]]
    assert client.get(f"{API}/trials/{nan_trial['id']}").json()["values"] == ["NaN", 5.0]


def test_an_imported_result_with_several_values(client):
    sid = mo_study(client)["id"]
    response = client.post(
        f"{API}/studies/{sid}/trials", json={"params": {"x": 0.5}, "values": [0.9, 12.0]}
    )
    assert response.status_code == 201, response.text
    trial = client.get(f"{API}/trials/{response.json()['id']}").json()
    assert trial["state"] == "completed" and trial["values"] == [0.9, 12.0]
    assert trial["is_pareto"] is True
