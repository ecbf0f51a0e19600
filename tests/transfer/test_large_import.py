"""A study bigger than the API's body limit moves between two running servers over HTTP
(`tunelab export --api-url`, `tunelab import --api-url`) without loss, while every other
endpoint keeps refusing oversized bodies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.transfer.service import document_lines
from tests.fixtures.services import run_cli, truncate_all
from tests.fixtures.studies import study_body
from tests.worker.conftest import thread_server

LIMIT = 4 * 1024 * 1024
TRIALS = 200
STEPS = 150  # two metrics: 60,000 points in all


def _populate(api: httpx.Client) -> int:
    """Through the source server's API, as workers fill a study."""
    limits = {"max_trials": TRIALS + 10, "max_parallel_trials": 4}
    sid = api.post("/studies", json=study_body(limits=limits)).json()["id"]
    for n in range(TRIALS):
        trial = api.post(f"/studies/{sid}/trials").json()
        points = [
            {"name": name, "step": step, "value": value}
            for step in range(1, STEPS + 1)
            for name, value in (("loss", 1.0 / (step + n)), ("acc", step / (STEPS + n)))
        ]
        if n == 3:
            points[-2]["value"] = "NaN"
        reported = api.post(f"/trials/{trial['id']}/metrics", json=points)
        assert reported.status_code == 200, reported.text
        api.post(f"/trials/{trial['id']}/logs", json={"offset": 0, "text": f"trial {n} ✓\n"})
        state = {"state": "failed", "error": "OOM"} if n % 50 == 7 else {}
        assert api.post(f"/trials/{trial['id']}/complete", json=state).status_code == 200
    return int(sid)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=600)


def _without_source_id(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "source_id"}


@pytest.mark.slow
@pytest.mark.postgres
def test_a_study_over_the_body_limit_moves_between_servers(
    tmp_path: Path, sqlite_url: str, pg_url: str
) -> None:
    truncate_all(pg_url)
    with (
        thread_server(sqlite_url, tmp_path / "source") as source,
        thread_server(pg_url, tmp_path / "target") as target,
        httpx.Client(base_url=f"{source}/api/v1", timeout=120) as source_api,
        httpx.Client(base_url=f"{target}/api/v1", timeout=120) as target_api,
    ):
        sid = _populate(source_api)
        path = tmp_path / "study.json"
        exported = _cli("export", str(sid), "-o", str(path), "--api-url", source)
        assert exported.returncode == 0, exported.stderr
        text = path.read_text()
        assert len(text.encode()) > LIMIT
        document = json.loads(text)
        assert len(document["trials"]) == TRIALS

        # The one-request import keeps the limit, and so does every other endpoint.
        whole = target_api.post(
            "/studies/import", content=text, headers={"Content-Type": "application/json"}
        )
        assert whole.status_code == 413 and whole.json()["field"] == "body"
        assert target_api.get("/studies").json()["total"] == 0

        imported = _cli("import", str(path), "--api-url", target)
        assert imported.returncode == 0, imported.stderr
        new_id = int(imported.stdout.strip())

        again = target_api.get(f"/studies/{new_id}/export").json()
        # Study fields, parameters, trials (states, values, timestamps), every metric point
        # (the NaN included), log chunks and events, each exactly as on the source.
        assert _without_source_id(again) == _without_source_id(document)
        assert sum(len(t["metrics"]) for t in again["trials"]) == TRIALS * STEPS * 2
        assert len(again["events"]) == len(document["events"]) >= TRIALS * 2
        before = source_api.get(f"/studies/{sid}").json()
        after = target_api.get(f"/studies/{new_id}").json()
        for key in ("trial_counts", "best_value", "n_trials", "space", "limits", "state"):
            assert after[key] == before[key], key

        some_trial = target_api.get(f"/studies/{new_id}/trials").json()["items"][0]
        oversized = target_api.post(
            f"/trials/{some_trial['id']}/metrics",
            content=b"[" + b'{"name":"loss","step":1,"value":1},' * (LIMIT // 30) + b"]",
            headers={"Content-Type": "application/json"},
        )
        assert oversized.status_code == 413


def _stream(client: TestClient, lines: list[str]) -> httpx.Response:
    body = "".join(f"{line}\n" for line in lines).encode()
    return client.post(
        "/api/v1/studies/import/stream",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )


def test_a_stream_cut_short_or_bad_leaves_nothing_and_names_the_line(client: TestClient) -> None:
    sid = client.post("/api/v1/studies", json=study_body()).json()["id"]
    for n in range(3):
        trial = client.post(f"/api/v1/studies/{sid}/trials").json()
        points = [{"name": "loss", "step": s, "value": 1 / (s + n)} for s in range(1, 6)]
        client.post(f"/api/v1/trials/{trial['id']}/metrics", json=points)
        client.post(f"/api/v1/trials/{trial['id']}/complete", json={})
    document = client.get(f"/api/v1/studies/{sid}/export").json()
    lines = list(document_lines(document, items_per_line=2))
    events = len(document["events"])
    assert json.loads(lines[-1]) == {
        "end": {"trials": 3, "metrics": 15, "logs": 0, "events": events}
    }

    cut = _stream(client, lines[:-3])
    assert cut.status_code == 422 and cut.json()["field"] == "body", cut.text
    missing = _stream(client, lines[:4] + lines[5:])
    assert missing.status_code == 422 and missing.json()["field"] == f"lines.{len(lines) - 1}.end"
    bad = list(lines)
    index = next(i for i, line in enumerate(bad) if line.startswith('{"metrics"'))
    item = json.loads(bad[index])
    item["metrics"]["items"][1]["value"] = "lots"
    bad[index] = json.dumps(item)
    wrong = _stream(client, bad)
    assert wrong.status_code == 422
    assert wrong.json()["field"] == f"lines.{index + 1}.metrics.items.1.value"
    unknown = _stream(client, [*lines[:2], json.dumps({"metrics": {"trial_number": 99}})])
    assert unknown.json()["field"] == "lines.3.metrics.trial_number"
    assert client.get("/api/v1/studies").json()["total"] == 1  # nothing half-imported

    done = _stream(client, lines)
    assert done.status_code == 201, done.text
    copy = client.get(f"/api/v1/studies/{done.json()['id']}/export").json()
    assert _without_source_id(copy) == _without_source_id(document)
