"""A study moves between servers without loss: SQLite -> file -> PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from app.transfer.service import export_study, import_study
from tests.fixtures.services import run_cli, truncate_all
from tests.fixtures.studies import study_body

PARAMS = {"lr": 0.01, "momentum": 0.95, "batch_size": 32, "optimizer": "adam", "epochs": 27}


def _client(tmp_path: Path, url: str) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, database_url=url), Database(url)))


def _populate(client: TestClient) -> int:
    sid = client.post("/api/v1/studies", json=study_body(tags={"team": "vision"})).json()["id"]
    values = [[0.9, 0.5, 0.25], [0.8, "NaN"], [0.7, "Infinity", "-Infinity"]]
    for curve in values:
        trial = client.post(f"/api/v1/studies/{sid}/trials").json()
        points = [{"name": "loss", "step": i + 1, "value": v} for i, v in enumerate(curve)]
        points.append({"name": "acc", "step": 0.5, "value": 0.1})
        client.post(f"/api/v1/trials/{trial['id']}/metrics", json=points)
        client.post(f"/api/v1/trials/{trial['id']}/logs", json={"offset": 0, "text": "héllo\n"})
        client.post(f"/api/v1/trials/{trial['id']}/logs", json={"offset": 7, "text": "world\n"})
        client.post(f"/api/v1/trials/{trial['id']}/complete", json={})
    failed = client.post(f"/api/v1/studies/{sid}/trials").json()
    client.post(f"/api/v1/trials/{failed['id']}/complete", json={"state": "failed", "error": "OOM"})
    client.post(f"/api/v1/studies/{sid}/trials").json()  # stays running
    client.post(f"/api/v1/studies/{sid}/trials", json={"params": PARAMS, "queue": True})
    client.post(
        f"/api/v1/studies/{sid}/trials",
        json={"params": PARAMS, "value": "-Infinity", "state": "completed"},
    )
    return int(sid)


def _without_source_ids(document: dict) -> dict:
    document = json.loads(json.dumps(document))
    document.pop("source_id")
    return document


@pytest.mark.postgres
def test_sqlite_to_postgres_round_trip(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    truncate_all(pg_url)
    with _client(tmp_path, sqlite_url) as source:
        sid = _populate(source)
        exported = source.get(f"/api/v1/studies/{sid}/export").json()
        study_before = source.get(f"/api/v1/studies/{sid}").json()
    assert len(exported["trials"]) == 7
    assert exported["study"]["best_trial_number"] == 0

    # Through a file, as `tunelab export` / `tunelab import` move it.
    path = tmp_path / "study.json"
    path.write_text(json.dumps(exported, allow_nan=False))
    target = Database(pg_url)
    with target.session() as session:
        new_id = import_study(session, json.loads(path.read_text())).id
    with target.session() as session:
        again = export_study(session, new_id)
    target.dispose()
    assert _without_source_ids(again) == _without_source_ids(exported)

    with _client(tmp_path, pg_url) as dest:
        study_after = dest.get(f"/api/v1/studies/{new_id}").json()
        for key in (
            "name",
            "state",
            "space",
            "strategy",
            "limits",
            "tags",
            "seed",
            "best_value",
            "n_trials",
            "trial_counts",
            "budget_used",
            "created_at",
        ):
            assert study_after[key] == study_before[key], key
        trials = dest.get(f"/api/v1/studies/{new_id}/trials").json()["items"]
        assert [t["number"] for t in trials] == list(range(7))
        best = next(t for t in trials if t["id"] == study_after["best_trial_id"])
        assert best["number"] == 0 and best["value"] == 0.25
        nan_trial = trials[1]
        points = dest.get(f"/api/v1/trials/{nan_trial['id']}/metrics").json()["items"]
        assert [(p["name"], p["step"], p["value"]) for p in points] == [
            ("loss", 1.0, 0.8),
            ("loss", 2.0, "NaN"),
            ("acc", 0.5, 0.1),
        ]
        log = dest.get(f"/api/v1/trials/{nan_trial['id']}/logs").json()
        assert log["text"] == "héllo\nworld\n"
        events = dest.get(f"/api/v1/trials/{nan_trial['id']}/events").json()["items"]
        assert [e["to_state"] for e in events] == ["queued", "running", "completed"]
        # The imported study goes on: the running trial can be told, new ones asked for.
        running = next(t for t in trials if t["state"] == "running")
        told = dest.post(f"/api/v1/trials/{running['id']}/complete", json={"value": 0.1})
        assert told.status_code == 200
        queued = dest.post(f"/api/v1/studies/{new_id}/trials").json()
        assert queued["number"] == 5 and queued["source"] == "user"
        fresh = dest.post(f"/api/v1/studies/{new_id}/trials").json()
        assert fresh["number"] == 7


def test_import_rejects_bad_documents(client: TestClient) -> None:
    bad = client.post("/api/v1/studies/import", json={"format": "other"})
    assert bad.status_code == 422 and bad.json()["field"] == "format"
    sid = _populate(client)
    document = client.get(f"/api/v1/studies/{sid}/export").json()
    document["trials"][1]["number"] = 0
    twice = client.post("/api/v1/studies/import", json=document)
    assert twice.status_code == 422 and twice.json()["field"] == "trials.1.number"
    document["trials"][1]["number"] = 1
    document["trials"][2]["metrics"][0]["value"] = "lots"
    wrong = client.post("/api/v1/studies/import", json=document)
    assert wrong.status_code == 422 and wrong.json()["field"] == "trials.2.metrics.0.value"
    del document["study"]["metric"]
    missing = client.post("/api/v1/studies/import", json=document)
    assert missing.status_code == 422 and missing.json()["field"] == "study.metric"
    assert client.get("/api/v1/studies").json()["total"] == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_cli_round_trip(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    truncate_all(pg_url)
    with _client(tmp_path, sqlite_url) as source:
        sid = _populate(source)
    out = tmp_path / "export.json"

    exported = run_cli("export", str(sid), "-o", str(out), "--database-url", sqlite_url)
    assert exported.returncode == 0, exported.stderr
    imported = run_cli("import", str(out), "--database-url", pg_url)
    assert imported.returncode == 0, imported.stderr
    new_id = int(imported.stdout.strip())
    back = run_cli("export", str(new_id), "--database-url", pg_url)
    assert _without_source_ids(json.loads(back.stdout)) == _without_source_ids(
        json.loads(out.read_text())
    )
    missing = run_cli("export", "999", "--database-url", pg_url)
    assert missing.returncode == 1 and "study 999 not found" in missing.stderr


def test_import_checks_execution_and_space(client: TestClient) -> None:
    execution = {"command": ["python", "train.py"], "env": {"OMP_NUM_THREADS": "2"}}
    sid = client.post("/api/v1/studies", json=study_body(execution=execution)).json()["id"]
    document = client.get(f"/api/v1/studies/{sid}/export").json()
    document["study"]["execution"]["env"] = {"LD_PRELOAD": "/tmp/evil.so"}
    response = client.post("/api/v1/studies/import", json=document)
    assert response.status_code == 422 and response.json()["field"] == "study.execution.env"
    document["study"]["execution"]["env"] = {}
    document["study"]["space"] = {"x": {"type": "float", "low": 1, "high": 0}}
    response = client.post("/api/v1/studies/import", json=document)
    assert response.status_code == 422 and response.json()["field"] == "study.space.x.low"
