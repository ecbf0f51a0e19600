"""MemoryStudy (which the strategy contract suite runs on) and the API keep the same
books: one run of ASHA with pauses, driven through both, leaves the same trials."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.memory import MemoryStudy
from app.studies.models import Study
from app.trials.history import strategy_for, study_context
from tests.api.helpers import API, ask, report, tell
from tests.fixtures.studies import study_body

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
    "layers": {"type": "int", "low": 1, "high": 4},
}
FIDELITY = {"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3}
BASE = [0.5, 0.2, 0.9, 0.4, 0.3]


def loss(number: int, step: int, budget: float) -> float:
    # The last point of each run is its worst: `aggregate: best` and `last` differ.
    return BASE[number] + 1.0 / step + (0.3 if step == budget else 0.0)


def _memory_twin(stored: dict[str, Any]) -> MemoryStudy:
    study = Study(
        space=stored["space"],
        strategy=stored["strategy"],
        early_stopping=stored["early_stopping"],
        direction=stored["objective"]["direction"],
        metric=stored["objective"]["metric"],
        seed=stored["seed"],
        fidelity=stored["fidelity"],
        limits=stored["limits"],
    )
    return MemoryStudy(
        strategy_for(study), study_context(study), aggregate=stored["objective"]["aggregate"]
    )


@pytest.mark.parametrize("aggregate", ["last", "best"])
def test_memory_study_keeps_the_books_the_api_keeps(client, aggregate):
    body = study_body(
        space=SPACE,
        objective={"metric": "loss", "direction": "minimize", "aggregate": aggregate},
        strategy={"name": "asha", "mode": "pause", "seed": 4},
        fidelity=FIDELITY,
        limits={"max_trials": len(BASE), "max_parallel_trials": len(BASE)},
    )
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    memory = _memory_twin(stored)

    ids: dict[int, int] = {}  # trial number -> API id
    reported: dict[int, int] = {}  # trial number -> last step reported
    waiting: list[int] = []
    for _ in BASE:
        trial = ask(client, stored["id"])
        record, resumed = memory.ask() or (None, None)
        assert record is not None and not resumed and record.number == trial["number"]
        ids[trial["number"]] = trial["id"]
        waiting.append(trial["number"])
    while waiting:
        number = waiting.pop(0)
        budget = memory.history.get(number).budget or FIDELITY["max"]
        steps = range(reported.get(number, 0) + 1, int(budget) + 1)
        points = {float(s): loss(number, s, budget) for s in steps}
        reported[number] = int(budget)
        answer = report(
            client,
            ids[number],
            [{"name": "loss", "step": s, "value": v} for s, v in points.items()],
        )
        decision = memory.report(number, points)
        assert answer["decision"] == decision.action.value, (number, answer, decision)
        if decision.action.value == "continue":
            value = min(points.values()) if aggregate == "best" else points[max(points)]
            tell(client, ids[number], value=value)
            memory.tell(number, value)
        asked = client.post(f"{API}/studies/{stored['id']}/trials")
        twin = memory.ask(can_create=False)
        if asked.status_code == 201:
            assert twin is not None and twin[0].number == asked.json()["number"] and twin[1]
            waiting.append(twin[0].number)
        else:
            assert asked.status_code in (409, 410) and twin is None, asked.text

    api_trials = {
        t["number"]: t for t in client.get(f"{API}/studies/{stored['id']}/trials").json()["items"]
    }
    for record in memory.history.trials():
        trial = api_trials[record.number]
        assert (trial["value"], trial["budget"], trial["rung"], trial["extra"]) == (
            record.value,
            record.budget,
            record.rung,
            _jsonable(record.extra),
        ), record.number
        # The API closes the study (paused trials end stopped); MemoryStudy leaves them.
        assert trial["state"] == record.state or (
            record.state == "paused" and trial["state"] == "stopped"
        )
    assert any(r.state == "paused" for r in memory.history.trials())
    assert any((r.budget or 0) > FIDELITY["min"] for r in memory.history.trials())  # resumed
    study = client.get(f"{API}/studies/{stored['id']}").json()
    assert study["budget_used"] == pytest.approx(memory.budget_used)


def _jsonable(value: Any) -> Any:
    """Keys as JSON stores them (strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
