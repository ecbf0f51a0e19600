"""`GET /studies/{id}/compare/trials` and `/compare/history`: the compare pages' data."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import API, ask, create_study, report, tell

LIMITS = {"max_trials": 50, "max_parallel_trials": 50}


def _trial(client: TestClient, study_id: int, scale: float, steps: int) -> dict[str, Any]:
    trial = ask(client, study_id)
    if steps:
        points = [{"name": "loss", "step": s, "value": scale / (s + 1)} for s in range(steps)]
        points += [{"name": "acc", "step": s, "value": 1 - scale / (s + 2)} for s in range(steps)]
        report(client, trial["id"], points)
    return trial


def test_compare_trials_returns_curves_params_and_decisions(client: TestClient) -> None:
    study = create_study(client, limits=LIMITS)
    a = _trial(client, study["id"], 1.0, 30)
    b = _trial(client, study["id"], 2.0, 5)
    c = _trial(client, study["id"], 3.0, 0)  # no points at all
    report(client, a["id"], [{"name": "loss", "step": 30, "value": "NaN"}])
    tell(client, a["id"])
    client.post(f"{API}/trials/{b['id']}/cancel")
    ids = f"{c['id']},{a['id']},{b['id']}"
    got = client.get(f"{API}/studies/{study['id']}/compare/trials", params={"trials": ids})
    assert got.status_code == 200, got.text
    body = got.json()
    assert [t["trial"]["id"] for t in body["trials"]] == [c["id"], a["id"], b["id"]]
    assert body["metric"] == "loss" and body["metrics"] == ["loss", "acc"]
    assert body["objectives"] == [{"metric": "loss", "direction": "minimize"}]
    no_points, first, second = body["trials"]
    assert no_points["curve"] == {"steps": [], "values": [], "total": 0}
    assert first["curve"]["total"] == 31 and first["curve"]["values"][-1] is None
    assert second["curve"]["steps"] == [0, 1, 2, 3, 4]
    assert set(first["trial"]["params"]) == set(second["trial"]["params"])
    assert first["trial"]["state"] == "completed"
    kinds = [(e["kind"], e["to_state"]) for e in second["events"]]
    assert ("state", "cancelled") in kinds or any(k[1] == "cancelled" for k in kinds)

    thinned = client.get(
        f"{API}/studies/{study['id']}/compare/trials",
        params={"trials": ids, "metric": "acc", "points": 10},
    ).json()
    acc = thinned["trials"][1]["curve"]
    assert thinned["metric"] == "acc" and len(acc["steps"]) <= 11 and acc["steps"][-1] == 29


def test_compare_trials_refuses_bad_selections_naming_the_field(client: TestClient) -> None:
    study = create_study(client, limits=LIMITS)
    other = create_study(client, limits=LIMITS)
    ids = [_trial(client, study["id"], 1.0, 0)["id"] for _ in range(5)]
    foreign = _trial(client, other["id"], 1.0, 0)["id"]
    url = f"{API}/studies/{study['id']}/compare/trials"

    def refused(trials: str | None, status: int = 422) -> str:
        response = client.get(url, params={} if trials is None else {"trials": trials})
        assert response.status_code == status, (trials, response.text)
        assert response.json()["field"] == "trials"
        return str(response.json()["detail"])

    assert "2 to 4" in refused(",".join(map(str, ids)))  # five
    assert "2 to 4" in refused(str(ids[0]))  # one
    assert "2 to 4" in refused(None)
    assert "not an id" in refused(f"{ids[0]},x")
    assert "twice" in refused(f"{ids[0]},{ids[0]}")
    assert str(foreign) in refused(f"{ids[0]},{foreign}", 404)
    assert "99999" in refused(f"{ids[0]},99999", 404)
    response = client.get(url, params={"trials": f"{ids[0]},{ids[1]}", "points": 1})
    assert response.status_code == 422 and response.json()["field"] == "points"
    missing = client.get(f"{API}/studies/99999/compare/trials", params={"trials": "1,2"})
    assert missing.status_code == 404 and missing.json()["field"] == "study_id"


def test_study_history_is_bounded_and_best_so_far_exact(client: TestClient) -> None:
    study = create_study(
        client, limits=LIMITS, objective={"metric": "acc", "direction": "maximize"}
    )
    values = [0.5, 0.4, 0.7, 0.6, 0.65, 0.9, 0.1, 0.2, 0.3, 0.35, 0.33, 0.31]
    for value in values:
        tell(client, ask(client, study["id"])["id"], value=value)
    ask(client, study["id"])  # running: not in the history
    url = f"{API}/studies/{study['id']}/compare/history"
    full = client.get(url).json()
    assert full["direction"] == "maximize" and full["metric"] == "acc"
    assert full["n_trials"] == 13 and full["n_scored"] == 12 and not full["thinned"]
    assert full["points"]["value"] == values
    assert full["best_by_number"]["value"] == [0.5, 0.7, 0.9, 0.9]
    assert full["best_by_number"]["number"] == [0, 2, 5, 11]
    assert full["best_by_time"]["value"][-1] == 0.9
    assert all(s is not None for s in full["best_by_time"]["seconds"])
    assert full["best"]["value"] == 0.9 and full["best"]["number"] == 5
    assert set(full["best"]["params"]) >= {"lr", "batch_size"}

    small = client.get(url, params={"points": 10}).json()
    assert small["thinned"] and len(small["points"]["value"]) <= 10
    assert 0.9 in small["points"]["value"]  # the best half is always kept
    assert small["best_by_number"] == full["best_by_number"]
    bad = client.get(url, params={"points": 5})
    assert bad.status_code == 422 and bad.json()["field"] == "points"
    empty = create_study(client, limits=LIMITS)
    none = client.get(f"{API}/studies/{empty['id']}/compare/history").json()
    assert none["best"] is None and none["points"]["value"] == []
    assert none["best_by_number"] == {"number": [], "seconds": [], "value": []}


def test_multi_objective_studies_compare_every_value(client: TestClient) -> None:
    objectives = [
        {"metric": "acc", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ]
    body = {
        "name": "mo",
        "objectives": objectives,
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "limits": {"max_trials": 50},
    }
    study = client.post(f"{API}/studies", json=body).json()
    ids = []
    for values in ([0.9, 30.0], [0.7, 10.0]):
        trial = ask(client, study["id"])
        tell(client, trial["id"], values=values)
        ids.append(trial["id"])
    got = client.get(
        f"{API}/studies/{study['id']}/compare/trials", params={"trials": f"{ids[0]},{ids[1]}"}
    ).json()
    assert [o["metric"] for o in got["objectives"]] == ["acc", "latency_ms"]
    assert got["metric"] == "acc" and got["metrics"] == ["acc", "latency_ms"]
    assert [t["trial"]["values"] for t in got["trials"]] == [[0.9, 30.0], [0.7, 10.0]]
    history = client.get(f"{API}/studies/{study['id']}/compare/history").json()
    assert history["direction"] == "maximize" and len(history["objectives"]) == 2
    assert history["best"]["value"] == 0.9


def test_study_history_follows_new_results(client: TestClient) -> None:
    """The trials' part is kept per study version: a new result shows at once."""
    study = create_study(client, limits=LIMITS)
    url = f"{API}/studies/{study['id']}/compare/history"
    tell(client, ask(client, study["id"])["id"], value=0.5)
    assert client.get(url).json()["n_scored"] == 1
    tell(client, ask(client, study["id"])["id"], value=0.2)
    client.patch(f"{API}/studies/{study['id']}", json={"name": "renamed"})
    again = client.get(url).json()
    assert again["n_scored"] == 2 and again["best"]["value"] == 0.2
    assert again["name"] == "renamed"
