"""The Pareto-front and hypervolume figures of a study with two or three objectives and a
constraint: the front the chart highlights is the API's Pareto set, infeasible trials are
grey with the broken constraint in their hover, and the hypervolume never decreases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.plots.builders.pareto import INFEASIBLE_COLOR, Goal, ParetoPoint, pareto_front

API = "/api/v1"
TWO = [
    {"metric": "acc", "direction": "maximize"},
    {"metric": "latency_ms", "direction": "minimize"},
]


def _study(client: TestClient, objectives: list[dict[str, Any]], **extra: Any) -> int:
    body = {
        "name": "front",
        "objectives": objectives,
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "limits": {"max_trials": 50, "max_parallel_trials": 50},
        **extra,
    }
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _finish(client: TestClient, study_id: int, values: list[float], memory: float) -> int:
    trial = client.post(f"{API}/studies/{study_id}/trials").json()
    points = [{"name": "memory_gib", "step": 1, "value": memory}]
    assert client.post(f"{API}/trials/{trial['id']}/metrics", json=points).status_code == 200
    done = client.post(f"{API}/trials/{trial['id']}/complete", json={"values": values})
    assert done.status_code == 200, done.text
    return int(trial["id"])


def test_two_objective_front_matches_the_pareto_set(client: TestClient) -> None:
    constraints = [{"metric": "memory_gib", "op": "<=", "value": 24}]
    study_id = _study(client, TWO, constraints=constraints)
    a = _finish(client, study_id, [0.9, 30.0], 10)  # front
    b = _finish(client, study_id, [0.8, 10.0], 10)  # front
    _finish(client, study_id, [0.7, 40.0], 10)  # dominated by both
    broken = _finish(client, study_id, [0.99, 1.0], 30)  # best at both, over the memory limit
    figure = client.get(f"{API}/studies/{study_id}/plots/pareto").json()
    meta = figure["layout"]["meta"]
    pareto = client.get(f"{API}/studies/{study_id}/pareto").json()
    assert sorted(meta["front"]) == sorted(t["id"] for t in pareto["trials"]) == sorted([a, b])
    assert meta["infeasible"] == [broken]
    grey = next(t for t in figure["data"] if t["name"].startswith("infeasible"))
    assert grey["marker"]["color"] == INFEASIBLE_COLOR
    assert "memory_gib 30" in grey["text"][0] and "over by 6" in grey["text"][0]
    assert "acc (↑)" in figure["layout"]["xaxis"]["title"]["text"]

    history = client.get(f"{API}/studies/{study_id}/plots/hypervolume").json()
    volumes = client.get(f"{API}/studies/{study_id}/hypervolume").json()
    assert history["layout"]["meta"]["last"] == volumes["points"][-1]["hypervolume"]
    ys = [p["hypervolume"] for p in volumes["points"]]
    assert ys == sorted(ys)


def test_three_objectives_are_a_3d_scatter(client: TestClient) -> None:
    three = [*TWO, {"metric": "memory_gib", "direction": "minimize"}]
    study_id = _study(client, three)
    for k in range(4):
        trial = client.post(f"{API}/studies/{study_id}/trials").json()
        values = [0.5 + 0.1 * k, 10.0 * (k + 1), 4.0 - k]
        client.post(f"{API}/trials/{trial['id']}/complete", json={"values": values})
    figure = client.get(f"{API}/studies/{study_id}/plots/pareto").json()
    assert {t["type"] for t in figure["data"]} == {"scatter3d"}
    assert figure["layout"]["scene"]["zaxis"]["title"]["text"] == "memory_gib (↓)"


def test_single_objective_study_says_so() -> None:
    figure = pareto_front([ParetoPoint(1, 0, [1.0], True, True)], [Goal("loss", "minimize")])
    assert "one objective" in figure.layout.annotations[0].text
