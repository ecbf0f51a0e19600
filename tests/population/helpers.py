"""What the PBT integration tests share: the study and the checks of a finished run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.worker.conftest import all_trials, wait_study_done

MEMBER = str(Path(__file__).resolve().parent / "scripts" / "pbt_member.py")


def pbt_study(name: str = "pbt", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}},
        "strategy": {
            "name": "pbt",
            "seed": 7,
            "population_size": 4,
            "perturbation_interval": 2,
            "quantile_fraction": 0.5,
        },
        "fidelity": {"param": "epochs", "min": 1, "max": 12},
        "limits": {"max_trials": 4, "max_parallel_trials": 4, "heartbeat_timeout_s": 45},
        "execution": {
            "command": [sys.executable, MEMBER, "--sleep", "0.05"],
            "metric_definitions": [
                {"name": "loss", "regex": r"epoch (?P<step>\d+) loss=(?P<value>\S+)"}
            ],
            "stop_grace_s": 5,
            "checkpoint": True,
        },
    }
    body.update(overrides)
    return body


def _state(root: Path, study_id: int, number: int) -> dict[str, Any]:
    return json.loads((root / f"study-{study_id}" / f"trial-{number}" / "state.json").read_text())


def check_refused_without_checkpoints(api: httpx.Client) -> None:
    body = pbt_study()
    body["execution"]["checkpoint"] = False
    answer = api.post("/studies", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "execution.checkpoint"
    assert "TUNELAB_CHECKPOINT_DIR" in answer.json()["detail"]


def check_population_run(api: httpx.Client, root: Path, body: dict[str, Any]) -> int:
    """Runs `body` to its end, checks every exploit's checkpoint copy, then replays."""
    created = api.post("/studies", json=body)
    assert created.status_code == 201, created.text
    study = wait_study_done(api, created.json()["id"], 120)
    assert study["state"] == "completed", study["state_reason"]
    study_id = study["id"]
    trials = all_trials(api, study_id)
    assert len(trials) == 4 and all(t["state"] == "completed" for t in trials), [
        (t["state"], t["error"]) for t in trials
    ]
    population = api.get(f"/studies/{study_id}/population").json()
    assert population["edges"], "no member exploited"
    by_id = {t["id"]: t for t in trials}

    for edge in population["edges"]:
        receiver = by_id[edge["receiver_id"]]
        donor = by_id[edge["donor_id"]]
        log = api.get(f"/trials/{receiver['id']}/logs").json()["text"]
        # The runner copied the donor's folder before the member's process started, and
        # the process loaded the donor's weights (their origin is the donor's lineage).
        assert f"[tunelab] copied trial {donor['number']}'s checkpoint" in log, (edge, log)
        assert f"loaded epoch {edge['donor_step']:g} origin" in log, (edge, log)
        events = api.get(f"/trials/{receiver['id']}/events").json()
        items = events["items"] if isinstance(events, dict) else events
        kinds = [e["kind"] for e in items]
        assert "exploit" in kinds and "explore" in kinds
        exploit = next(
            e
            for e in items
            if e["kind"] == "exploit"
            and e["data"]["donor_id"] == donor["id"]
            and e["data"]["step"] == edge["step"]
        )
        assert "in the bottom 50 %" in exploit["reason"]
        assert f"copied trial {donor['number']}'s checkpoint" in exploit["reason"]

    # Donors' folders are untouched: each holds weights trained to the member's end.
    for trial in trials:
        state = _state(root, study_id, trial["number"])
        assert state["epoch"] == 12
        member = next(m for m in population["members"] if m["trial_id"] == trial["id"])
        # The weights' lr history is the schedule the API serves for that member.
        expected = [
            next(e for e in reversed(member["schedule"]) if e["step"] < epoch)["params"]["lr"]
            for epoch in range(1, 13)
        ]
        assert state["lrs"] == pytest.approx(expected), (
            trial["number"],
            member["schedule"],
            member["lineage"],
            api.get(f"/trials/{trial['id']}/logs").json()["text"],
        )
        served = api.get(f"/trials/{trial['id']}/schedule").json()
        assert served["schedule"] == member["schedule"]

    # Replay: one new trial runs the best member's schedule from scratch.
    best = min(trials, key=lambda t: t["value"])
    replay = api.post(f"/studies/{study_id}/replay", json={})
    assert replay.status_code == 201, replay.text
    replayed = replay.json()
    assert replayed["source"] == "replay" and replayed["state"] == "queued"
    study = wait_study_done(api, study_id, 60)
    assert study["state"] == "completed", study["state_reason"]
    final = api.get(f"/trials/{replayed['id']}").json()
    assert final["state"] == "completed"
    log = api.get(f"/trials/{replayed['id']}/logs").json()["text"]
    assert log.startswith("fresh start") or "fresh start" in log.splitlines()[0]
    best_member = next(m for m in population["members"] if m["trial_id"] == best["id"])
    state = _state(root, study_id, replayed["number"])
    expected = [
        next(e for e in reversed(best_member["schedule"]) if e["step"] < epoch)["params"]["lr"]
        for epoch in range(1, 13)
    ]
    assert state["lrs"] == pytest.approx(expected)
    assert state["loss"] == pytest.approx(best["value"], rel=1e-9)
    return study_id
