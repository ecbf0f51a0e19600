"""The trials export streams a page of trials at a time (app/trials/export.py)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.fixtures.studies import study_body

API = "/api/v1"
USER_CONFIG = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "sgd", "epochs": 27}


def test_export_pages_through_the_study(client, monkeypatch) -> None:
    monkeypatch.setattr("app.trials.export.CHUNK", 3)
    study = client.post(f"{API}/studies", json=study_body(limits={"max_trials": 50})).json()
    values = [0.9, 0.5, 0.7, 0.4, 0.8, 0.6, 0.3]
    for i, value in enumerate(values):
        params = USER_CONFIG if i == 5 else None
        body = {"params": params, "value": value, "state": "completed"} if params else None
        if body is None:
            trial = client.post(f"{API}/studies/{study['id']}/trials").json()
            client.post(f"{API}/trials/{trial['id']}/complete", json={"value": value})
        else:
            client.post(f"{API}/studies/{study['id']}/trials", json=body)
    text = client.get(f"{API}/studies/{study['id']}/trials.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["number"]) for r in rows] == list(range(7))  # across three pages
    assert rows[5]["params_batch_size"] == "32" and rows[5]["params_optimizer"] == "sgd"
    assert [float(r["best_so_far"]) for r in rows] == [0.9, 0.5, 0.5, 0.4, 0.4, 0.4, 0.3]
    as_json = client.get(f"{API}/studies/{study['id']}/trials.csv", params={"format": "json"})
    assert [r["number"] for r in as_json.json()] == list(range(7))


@pytest.mark.parametrize("size", [0, 2])
def test_export_of_a_small_or_empty_study_is_complete(client, size: int) -> None:
    study = client.post(f"{API}/studies", json=study_body(limits={"max_trials": 50})).json()
    for _ in range(size):
        trial = client.post(f"{API}/studies/{study['id']}/trials").json()
        client.post(f"{API}/trials/{trial['id']}/complete", json={"value": 1.0})
    assert (
        len(client.get(f"{API}/studies/{study['id']}/trials.csv", params={"format": "json"}).json())
        == size
    )
    lines = client.get(f"{API}/studies/{study['id']}/trials.csv").text.splitlines()
    assert len(lines) == size + 1 and lines[0].startswith("number,trial_id,")
