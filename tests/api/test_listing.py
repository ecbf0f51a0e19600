"""Listing trials (filters, orderings, cursor pagination), export and trial events."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.helpers import API, ask, create_study, tell

VALUES = [0.5, None, 0.2, 0.9, 0.2, "NaN", 0.7, None, 0.1, 0.4]


@pytest.fixture
def populated(client):
    """Ten trials: completed with values (a tie, a NaN), running ones and a failed one."""
    study = create_study(client, limits={"max_trials": 20, "max_parallel_trials": 20})
    trials = []
    for number, value in enumerate(VALUES):
        trial = ask(client, study["id"])
        if value is not None:
            tell(client, trial["id"], value=value)
        elif number == 7:
            tell(client, trial["id"], state="failed", error="boom")
        trials.append(trial)
    return study, trials


def _walk(client, study_id: int, **params) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"{API}/studies/{study_id}/trials", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params.get("limit", 100)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_list_by_number_pages_without_duplicates_or_gaps(client, populated):
    study, _ = populated
    items = _walk(client, study["id"], limit=3)
    assert [t["number"] for t in items] == list(range(10))
    descending = _walk(client, study["id"], limit=4, order_by="-number")
    assert [t["number"] for t in descending] == list(range(9, -1, -1))


def test_state_filter(client, populated):
    study, _ = populated
    running = _walk(client, study["id"], state="running")
    assert [t["number"] for t in running] == [1]
    both = _walk(client, study["id"], state=["running", "failed"], limit=1)
    assert [t["number"] for t in both] == [1, 7]
    bad = client.get(f"{API}/studies/{study['id']}/trials", params={"state": "bogus"})
    assert bad.status_code == 422 and bad.json()["field"] == "state.0"


@pytest.mark.parametrize("limit", [1, 2, 3, 100])
def test_order_by_value_pages_through_ties_and_missing_values(client, populated, limit):
    study, _ = populated
    ascending = _walk(client, study["id"], order_by="value", limit=limit)
    assert len(ascending) == 10 and len({t["id"] for t in ascending}) == 10
    finite = [t["value"] for t in ascending if isinstance(t["value"], float)]
    assert finite == sorted(finite)
    assert [t["value"] for t in ascending][-2:] == [None, None]  # no value comes last
    descending = _walk(client, study["id"], order_by="-value", limit=limit)
    assert len({t["id"] for t in descending}) == 10
    finite_desc = [t["value"] for t in descending if isinstance(t["value"], float)]
    assert finite_desc == sorted(finite_desc, reverse=True)
    assert [t["value"] for t in descending][-2:] == [None, None]


@pytest.mark.parametrize("order_by", ["started_at", "-started_at", "finished_at", "-finished_at"])
def test_order_by_times_pages_completely(client, populated, order_by):
    study, _ = populated
    items = _walk(client, study["id"], order_by=order_by, limit=3)
    assert sorted(t["number"] for t in items) == list(range(10))
    key = order_by.lstrip("-")
    stamps = [t[key] for t in items if t[key] is not None]
    assert stamps == sorted(stamps, reverse=order_by.startswith("-"))


def test_unknown_order_by_is_422(client, populated):
    study, _ = populated
    response = client.get(f"{API}/studies/{study['id']}/trials", params={"order_by": "params"})
    assert response.status_code == 422 and response.json()["field"] == "order_by"


def test_csv_export_has_a_best_so_far_column(client, populated):
    study, _ = populated
    response = client.get(f"{API}/studies/{study['id']}/trials.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["number"]) for r in rows] == list(range(10))
    assert {
        "params_lr",
        "params_optimizer",
        "params_epochs",
        "value",
        "state",
        "start",
        "end",
        "duration_s",
        "best_so_far",
    } <= set(rows[0])
    assert [r["best_so_far"] for r in rows] == [
        "0.5",
        "0.5",
        "0.2",
        "0.2",
        "0.2",
        "0.2",
        "0.2",
        "0.2",
        "0.1",
        "0.1",
    ]
    assert rows[5]["value"] == "nan" and rows[1]["value"] == "" and rows[1]["end"] == ""
    assert rows[7]["state"] == "failed"
    assert float(rows[0]["duration_s"]) >= 0


def test_json_export_matches_the_csv(client, populated):
    study, _ = populated
    response = client.get(f"{API}/studies/{study['id']}/trials.csv", params={"format": "json"})
    assert response.status_code == 200
    rows = response.json()
    assert [r["best_so_far"] for r in rows] == [0.5, 0.5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1]
    assert rows[5]["value"] == "NaN" and rows[1]["value"] is None
    assert rows[0]["params_epochs"] == 27
    bad = client.get(f"{API}/studies/{study['id']}/trials.csv", params={"format": "xml"})
    assert bad.status_code == 422 and bad.json()["field"] == "format"


def test_export_for_maximize_and_missing_study(client):
    study = create_study(client, objective={"metric": "acc", "direction": "maximize"})
    for value in (0.1, 0.5, 0.3):
        tell(client, ask(client, study["id"])["id"], value=value)
    rows = client.get(f"{API}/studies/{study['id']}/trials.csv", params={"format": "json"}).json()
    assert [r["best_so_far"] for r in rows] == [0.1, 0.5, 0.5]
    assert client.get(f"{API}/studies/999/trials.csv").status_code == 404


def test_trial_events_tell_who_and_why(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    tell(client, trial["id"], value=1.0)
    page = client.get(f"{API}/trials/{trial['id']}/events").json()
    kinds = [(e["kind"], e["from_state"], e["to_state"]) for e in page["items"]]
    assert kinds == [
        ("created", None, "queued"),
        ("state", "queued", "running"),
        ("state", "running", "completed"),
    ]
    assert all(e["actor"] for e in page["items"])
    assert page["items"][0]["data"]["params"] == trial["params"]
    later = client.get(f"{API}/trials/{trial['id']}/events", params={"since": page["cursor"]})
    assert later.json()["items"] == [] and later.json()["cursor"] == page["cursor"]
