"""The change marker an in-memory history syncs from: every change of a trial a strategy
can see raises the study's `history_version`, and the changed trials carry the new value;
anything else leaves it alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.api.helpers import API, ask, report, tell
from tests.fixtures.studies import study_body

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
    "layers": {"type": "int", "low": 1, "high": 4},
}
FIDELITY = {"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3}
# What a strategy sees of a trial.
VISIBLE = "state, value, budget, rung, extra, params"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class Versions:
    """Snapshots of a study's versions; `step` checks what changed since the last one."""

    def __init__(self, engine: Engine, study_id: int) -> None:
        self.engine = engine
        self.study_id = study_id
        self.version, self.trials = self._snapshot()

    def _snapshot(self) -> tuple[int, dict[int, tuple[int, tuple[Any, ...]]]]:
        with self.engine.connect() as connection:
            version = connection.execute(
                text("SELECT history_version FROM studies WHERE id = :id"), {"id": self.study_id}
            ).scalar_one()
            rows = connection.execute(
                text(f"SELECT id, history_version, {VISIBLE} FROM trials WHERE study_id = :id"),
                {"id": self.study_id},
            )
            trials = {
                row.id: (
                    row.history_version,
                    (
                        row.state,
                        row.value,
                        row.budget,
                        row.rung,
                        _json(row.extra),
                        _json(row.params),
                    ),
                )
                for row in rows
            }
        return version, trials

    def step(self) -> set[int]:
        """The trials changed since the last step, checked against the versions."""
        version, trials = self._snapshot()
        changed = {
            trial_id
            for trial_id, (_, seen) in trials.items()
            if trial_id not in self.trials or self.trials[trial_id][1] != seen
        }
        if changed:
            assert version > self.version, "a visible change left the version as it was"
            assert max(trials[t][0] for t in changed) == version
        else:
            assert version == self.version, "the version rose with nothing visible changed"
        for trial_id, (trial_version, _) in trials.items():
            if trial_id in changed:
                assert self.version < trial_version <= version, trial_id
            else:
                assert trial_version == self.trials[trial_id][0], trial_id
        self.version, self.trials = version, trials
        return changed


def _study(client, **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{API}/studies", json=study_body(space=SPACE, **overrides))
    assert response.status_code == 201, response.text
    return response.json()


def _state(client, trial_id: int) -> str:
    return client.get(f"{API}/trials/{trial_id}").json()["state"]


def test_asha_stop_reports_completion_cancel_and_study_stop(client, engine):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "stop", "seed": 1},
        fidelity=FIDELITY,
        limits={"max_trials": 8, "max_parallel_trials": 8},
    )
    versions = Versions(engine, study["id"])
    trials = []
    for _ in range(6):
        trials.append(ask(client, study["id"]))
        assert versions.step() == {trials[-1]["id"]}

    first = trials[0]["id"]
    decision = report(client, first, [{"name": "loss", "step": 1, "value": 0.1}])
    assert decision["decision"] == "continue"
    assert versions.step() == {first}  # its rung and rung result
    # Points between rungs, and heartbeats, change nothing a strategy keeps on the trial.
    report(client, first, [{"name": "loss", "step": 2, "value": 0.09}])
    assert versions.step() == set()
    assert client.post(f"{API}/trials/{first}/heartbeat").status_code == 200
    assert versions.step() == set()

    decisions = {}
    for index, trial in enumerate(trials[1:], start=2):
        loss = [{"name": "loss", "step": 1, "value": 0.1 * index}]
        decisions[trial["id"]] = report(client, trial["id"], loss)["decision"]
        assert versions.step() == {trial["id"]}
    stopped = [t for t, d in decisions.items() if d == "stop"]
    assert stopped, decisions

    # A client's own final value for a trial the scheduler stopped.
    tell(client, stopped[0], value=0.05)
    assert versions.step() == {stopped[0]}
    # Completed already: told again, nothing changes.
    tell(client, first, value=0.08)
    assert versions.step() == {first}
    tell(client, first, value=0.07)
    assert versions.step() == set()

    running = [t["id"] for t in trials if _state(client, t["id"]) == "running"]
    for _ in range(2):
        running.append(ask(client, study["id"])["id"])
        assert versions.step() == {running[-1]}
    assert client.post(f"{API}/trials/{running[0]}/cancel").status_code == 200
    assert versions.step() == {running[0]}
    assert client.post(f"{API}/trials/{running[0]}/cancel").status_code == 200
    assert versions.step() == set()

    queued = ask(client, study["id"], {"params": {"lr": 0.01, "layers": 2}, "queue": True})
    assert versions.step() == {queued["id"]}
    stop = client.patch(f"{API}/studies/{study['id']}", json={"state": "stopped"})
    assert stop.status_code == 200, stop.text
    assert versions.step() == {*running[1:], queued["id"]}


def test_retries_resumes_imports_and_a_completed_study(client, engine):
    study = _study(client, limits={"max_trials": 5, "max_parallel_trials": 2, "max_retries": 1})
    versions = Versions(engine, study["id"])
    trial = ask(client, study["id"])
    versions.step()
    tell(client, trial["id"], state="failed", error="OOM")
    assert versions.step() == {trial["id"]}
    assert _state(client, trial["id"]) == "queued"
    again = ask(client, study["id"])
    assert again["id"] == trial["id"]
    assert versions.step() == {trial["id"]}
    tell(client, trial["id"], state="failed", error="OOM")
    assert versions.step() == {trial["id"]}
    assert _state(client, trial["id"]) == "failed"

    retried = client.post(f"{API}/trials/{trial['id']}/retry")
    assert retried.status_code == 201, retried.text
    assert versions.step() == {retried.json()["id"]}
    imported = ask(
        client,
        study["id"],
        {"params": {"lr": 0.01, "layers": 1}, "value": 0.3, "state": "completed"},
    )
    assert versions.step() == {imported["id"]}


def test_asha_pause_resume_and_the_study_ending(client, engine):
    study = _study(
        client,
        strategy={"name": "asha", "mode": "pause", "seed": 1},
        fidelity=FIDELITY,
        limits={"max_trials": 3, "max_parallel_trials": 3},
    )
    versions = Versions(engine, study["id"])
    trials = [ask(client, study["id"]) for _ in range(3)]
    assert versions.step() == {t["id"] for t in trials}
    for trial, loss in zip(trials, (0.5, 0.2, 0.9), strict=True):
        decision = report(client, trial["id"], [{"name": "loss", "step": 1, "value": loss}])
        assert decision["decision"] == "pause"
        assert versions.step() == {trial["id"]}

    resumed = ask(client, study["id"])
    assert resumed["resume"] is True and resumed["budget"] == 3
    assert versions.step() == {resumed["id"]}
    assert (
        report(client, resumed["id"], [{"name": "loss", "step": 3, "value": 0.1}])["decision"]
        == "pause"
    )
    assert versions.step() == {resumed["id"]}
    again = ask(client, study["id"])
    assert again["id"] == resumed["id"] and again["budget"] == 9
    assert versions.step() == {resumed["id"]}
    report(client, again["id"], [{"name": "loss", "step": 9, "value": 0.05}])
    versions.step()
    # Completing the last trial completes the study: the paused trials end stopped.
    tell(client, again["id"])
    assert versions.step() == {t["id"] for t in trials}
    assert client.get(f"{API}/studies/{study['id']}").json()["state"] == "completed"
