"""Many clients asking, reporting (with ASHA decisions) and telling at once over real HTTP
on PostgreSQL: every change stamps its trial with a version of its own, so an in-memory
history that syncs "the trials stamped after the version I hold" misses none."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.services import live_server, postgres_available, recreate_pg_database
from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 12
SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}}
FIDELITY = {"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3}


def _client(base: str, study_id: int, index: int, errors: list[str]) -> None:
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            asked = http.post(f"/studies/{study_id}/trials")
            if asked.status_code == 410:
                return
            if asked.status_code == 409:
                time.sleep(0.02)
                continue
            if asked.status_code != 201:
                errors.append(f"ask: {asked.status_code} {asked.text}")
                return
            trial = asked.json()
            budget = int(trial["budget"])
            for step in range(1, budget + 1):
                loss = (index + 1) / 10 + 1 / step
                answer = http.post(
                    f"/trials/{trial['id']}/metrics",
                    json=[{"name": "loss", "step": step, "value": loss}],
                )
                if answer.status_code != 200:
                    errors.append(f"report: {answer.status_code} {answer.text}")
                    return
                if answer.json()["decision"] != "continue":
                    break
            else:
                http.post(f"/trials/{trial['id']}/complete", json={})
        errors.append("the study did not end in time")


def test_concurrent_changes_get_versions_of_their_own(tmp_path: Path, worker_id: str) -> None:
    if not postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
    url = recreate_pg_database(f"{prefix}_versions_{worker_id}")
    with live_server(url, tmp_path) as base:
        body = study_body(
            space=SPACE,
            strategy={"name": "asha", "mode": "pause", "seed": 5},
            fidelity=FIDELITY,
            limits={"max_trials": 30, "max_parallel_trials": CLIENTS},
        )
        created = httpx.post(f"{base}/api/v1/studies", json=body, timeout=30)
        assert created.status_code == 201, created.text
        study_id = created.json()["id"]
        errors: list[str] = []
        threads = [
            threading.Thread(target=_client, args=(base, study_id, i, errors))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[:5]

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            study_version = connection.execute(
                text("SELECT history_version FROM studies WHERE id = :id"), {"id": study_id}
            ).scalar_one()
            versions = list(
                connection.execute(
                    text("SELECT history_version FROM trials WHERE study_id = :id"),
                    {"id": study_id},
                ).scalars()
            )
    finally:
        engine.dispose()
    assert len(versions) == 30
    # Each change took the next version under the study's lock: no two trials share one.
    assert len(set(versions)) == len(versions)
    assert max(versions) == study_version and min(versions) > 0
