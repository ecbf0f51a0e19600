"""Optuna studies made by the real Optuna package, on SQLite and PostgreSQL storages, come
in with their trials, parameters, values, states, intermediate values and user attrs,
and go on under Tunelab strategies."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest

from app.cli import main
from app.db.session import Database
from app.engine.space import SearchSpace
from tests.api.helpers import API
from tests.fixtures.services import postgres_available, recreate_pg_database
from tunelab.integrations.optuna import load, study_document

optuna.logging.set_verbosity(optuna.logging.WARNING)
PREFIX = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")


def objective(trial: optuna.Trial) -> float:
    """A float (log), a stepped int and a categorical; four reported steps. Trials 3 and
    5 are pruned at step 2, trial 4 fails."""
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 9, step=2)
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.set_user_attr("tag", f"run-{trial.number}")
    if trial.number == 4:
        raise RuntimeError("CUDA out of memory")
    loss = abs(math.log10(lr) + 2.5) + 0.1 * layers + (0.0 if optimizer == "adam" else 0.3)
    for step in range(4):
        trial.report(loss + 1.0 / (step + 1), step)
        if trial.number in (3, 5) and step == 2:
            raise optuna.TrialPruned()
    return loss


def make_study(storage: str, name: str = "mnist") -> optuna.Study:
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    study.set_user_attr("owner", "vision team")
    study.optimize(objective, n_trials=8, catch=(RuntimeError,))
    return study


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def optuna_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    if not postgres_available():
        pytest.skip("PostgreSQL is not running")
    return recreate_pg_database(f"{PREFIX}_optuna")


def _import(client: Any, document: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/studies/import/optuna", json={"study": document, **body})
    assert response.status_code == 201, response.text
    return response.json()


def _trials(client: Any, study_id: int) -> list[dict[str, Any]]:
    items = client.get(f"{API}/studies/{study_id}/trials", params={"order_by": "number"})
    return items.json()["items"]


def test_an_optuna_study_comes_in_whole(client, optuna_storage):
    source = make_study(optuna_storage)
    document = load(optuna_storage, "mnist")
    study = _import(client, document, more_trials=5)

    assert study["name"] == "mnist" and study["state"] == "running"
    assert study["objective"]["metric"] == "value"
    assert study["objective"]["direction"] == "minimize"
    assert study["strategy"]["name"] == "tpe"
    assert study["space"] == {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "scale": "log"},
        "layers": {"type": "int", "low": 1, "high": 9, "scale": "linear", "step": 2},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    }
    assert study["limits"]["max_trials"] == 8 + 5
    assert study["tags"]["optuna"]["user_attrs"] == {"owner": "vision team"}
    assert study["trial_counts"]["completed"] == 5
    assert study["trial_counts"]["stopped"] == 2 and study["trial_counts"]["failed"] == 1

    trials = _trials(client, study["id"])
    by_number = {t["extra"]["optuna"]["number"]: t for t in trials}
    for frozen in source.trials:
        trial = by_number[frozen.number]
        assert trial["params"] == frozen.params
        assert trial["source"] == "imported"
        assert trial["extra"]["optuna"]["user_attrs"] == {"tag": f"run-{frozen.number}"}
        expected = {"COMPLETE": "completed", "PRUNED": "stopped", "FAIL": "failed"}
        assert trial["state"] == expected[frozen.state.name]
        if frozen.state.name == "COMPLETE":
            assert trial["value"] == pytest.approx(frozen.value)
        if frozen.state.name == "PRUNED":
            assert trial["value"] == pytest.approx(frozen.intermediate_values[2])
        if frozen.state.name == "FAIL":
            # Optuna 3 and later keep no fail reason with the trial.
            assert trial["error"] == "failed in Optuna"
        # Its times are Optuna's, not the import's.
        started = datetime.fromisoformat(trial["started_at"]).replace(tzinfo=None)
        assert started == frozen.datetime_start
        if frozen.datetime_complete is not None:
            finished = datetime.fromisoformat(trial["finished_at"]).replace(tzinfo=None)
            assert finished == frozen.datetime_complete
        points = client.get(f"{API}/trials/{trial['id']}/metrics").json()["items"]
        got = sorted((p["step"], p["value"]) for p in points)
        assert [s for s, _ in got] == [float(s) for s in sorted(frozen.intermediate_values)]
        assert [v for _, v in got] == pytest.approx(
            [frozen.intermediate_values[s] for s in sorted(frozen.intermediate_values)]
        )
    assert study["best_value"] == pytest.approx(source.best_value)


@pytest.mark.parametrize("strategy", ["tpe", "random", "gp"])
def test_an_imported_study_goes_on_under_a_tunelab_strategy(client, tmp_path, strategy):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    make_study(storage)
    study = _import(client, load(storage, "mnist"), strategy={"name": strategy}, more_trials=3)
    space = SearchSpace.from_dict(study["space"])
    numbers = []
    for value in (0.5, 0.4, 0.3):
        trial = client.post(f"{API}/studies/{study['id']}/trials")
        assert trial.status_code == 201, trial.text
        trial = trial.json()
        space.validate(trial["params"], "params")
        assert trial["source"] == "suggested"
        numbers.append(trial["number"])
        told = client.post(f"{API}/trials/{trial['id']}/complete", json={"value": value})
        assert told.status_code == 200, told.text
    assert numbers == [8, 9, 10]  # after the imported ones
    done = client.get(f"{API}/studies/{study['id']}").json()
    assert done["state"] == "completed" and done["best_value"] == pytest.approx(0.3)


def test_the_strategy_sees_the_imported_trials_as_its_history(client, database, tmp_path):
    """Warm start: the history a strategy reads holds every imported trial, with its
    state, value and curve, as if the study had run them."""
    from app.engine.base import TrialState
    from app.studies.service import get_study
    from app.trials.history import DbHistory

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    source = make_study(storage)
    imported = _import(client, load(storage, "mnist"))
    with database.session() as session:
        history = DbHistory(session, get_study(session, imported["id"]), with_intermediate=True)
        records = history.trials()
        assert history.count() == 8 and len(records) == 8
        for record, frozen in zip(records, source.trials, strict=True):
            assert dict(record.params) == frozen.params
            if frozen.state.name == "COMPLETE":
                assert record.state == TrialState.COMPLETED
                assert record.value == pytest.approx(frozen.value)
            if frozen.state.name == "PRUNED":
                assert record.state == TrialState.STOPPED
                assert record.value == pytest.approx(frozen.intermediate_values[2])
            if frozen.state.name == "FAIL":
                assert record.state == TrialState.FAILED and record.value is None


def test_changing_ranges_maximize_and_metric_names(client, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="grow", storage=storage, direction="maximize")
    study.set_metric_names(["accuracy"])
    # Optuna lets a range change between trials (not a categorical's choices).
    for low, high in ((0.0, 1.0), (0.5, 2.0), (3.0, 3.0)):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", low, high))
    imported = _import(client, study_document(study))
    assert imported["objective"] == {
        "metric": "accuracy",
        "direction": "maximize",
        "aggregate": "last",
    }
    assert imported["space"]["x"] == {"type": "float", "low": 0.0, "high": 3.0, "scale": "linear"}
    assert imported["best_value"] == pytest.approx(max(t.value for t in study.trials))


@pytest.mark.parametrize(
    ("specs", "merged"),
    [
        (
            [
                {"type": "categorical", "choices": ["a", 1]},
                {"type": "categorical", "choices": [True, "a"]},
            ],
            {"type": "categorical", "choices": ["a", 1, True]},
        ),
        (
            [{"type": "fixed", "value": 3}, {"type": "fixed", "value": 5}],
            {"type": "int", "low": 3, "high": 5, "scale": "linear"},
        ),
        (
            [{"type": "fixed", "value": "x"}, {"type": "fixed", "value": "y"}],
            {"type": "categorical", "choices": ["x", "y"]},
        ),
        (
            [
                {"type": "float", "low": 0.0, "high": 1.0, "scale": "log"},
                {"type": "fixed", "value": 4.0},
            ],
            {"type": "float", "low": 0.0, "high": 4.0, "scale": "log"},
        ),
        (
            [
                {"type": "int", "low": 0, "high": 8, "step": 2},
                {"type": "int", "low": 0, "high": 4, "step": 2},
            ],
            {"type": "int", "low": 0, "high": 8, "step": 2, "scale": "linear"},
        ),
        (
            [
                {"type": "int", "low": 0, "high": 8, "step": 2},
                {"type": "int", "low": 1, "high": 9, "step": 2},
            ],
            {"type": "int", "low": 0, "high": 9, "scale": "linear"},
        ),
    ],
)
def test_specs_of_one_parameter_merge_into_one(specs, merged):
    from app.transfer.optuna import merge_specs

    assert merge_specs(dict(specs[0]), specs[1], "here") == merged


def test_several_objectives(client, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(
        study_name="mo", storage=storage, directions=["minimize", "maximize"]
    )
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 4)
    imported = _import(client, load(storage, "mo"), strategy={"name": "random"})
    assert [o["metric"] for o in imported["objectives"]] == ["value_0", "value_1"]
    assert [o["direction"] for o in imported["objectives"]] == ["minimize", "maximize"]
    trials = _trials(client, imported["id"])
    by_number = {t["extra"]["optuna"]["number"]: t for t in trials}
    for frozen in study.trials:
        assert by_number[frozen.number]["values"] == pytest.approx(frozen.values)


def test_running_trials_are_left_out_and_counted(client, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="busy", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), 2)
    study.ask().suggest_float("x", 0, 1)  # still running
    study.enqueue_trial({"x": 0.5})  # waiting
    imported = _import(client, load(storage, "busy"))
    assert imported["tags"]["optuna"]["imported"] == {"trials": 2, "skipped": 2}
    assert imported["n_trials"] == 2


def _document(**trial: Any) -> dict[str, Any]:
    base = {
        "number": 0,
        "state": "COMPLETE",
        "params": {"x": 0.5},
        "distributions": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "values": [1.0],
    }
    return {
        "format": "optuna-study",
        "version": 1,
        "study_name": "bad",
        "directions": ["minimize"],
        "trials": [{**base, **trial}],
    }


@pytest.mark.parametrize(
    ("trial", "field"),
    [
        (
            {
                "params": {"c": None},
                "distributions": {"c": {"type": "categorical", "choices": [None]}},
            },
            "study.trials.0.distributions.c.choices.0",
        ),
        ({"values": None}, "study.trials.0.values"),
        ({"params": {"x": 7.0}}, "study.trials.0.params.x"),
        ({"params": {"y": 1}}, "study.trials.0.distributions.y"),
        ({"state": "DONE"}, "study.trials.0.state"),
        (
            {"distributions": {"x": {"type": "float", "low": 2.0, "high": 1.0}}},
            "study.trials.0.distributions.x",
        ),
    ],
)
def test_bad_documents_are_422_naming_the_field(client, trial, field):
    response = client.post(f"{API}/studies/import/optuna", json={"study": _document(**trial)})
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(field), response.json()
    assert client.get(f"{API}/studies").json()["total"] == 0  # nothing left behind


def test_a_parameter_that_changes_type_is_422(client):
    document = _document()
    document["trials"].append(
        {
            "number": 1,
            "state": "COMPLETE",
            "params": {"x": "big"},
            "distributions": {"x": {"type": "categorical", "choices": ["big"]}},
            "values": [2.0],
        }
    )
    response = client.post(f"{API}/studies/import/optuna", json={"study": document})
    assert response.status_code == 422
    assert response.json()["field"] == "study.trials.1.distributions.x"


def test_the_cli_imports_straight_into_a_database(tmp_path, capsys, db_url):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    make_study(storage, "cli study")
    argv = ["import", "optuna", "--storage", storage, "--study", "cli study"]
    assert main([*argv, "--database-url", db_url, "--strategy", "random"]) == 0
    captured = capsys.readouterr()
    study_id = int(captured.out.strip())
    assert "8 trials" in captured.err
    from app.studies.service import get_study

    database = Database(db_url)
    try:
        with database.session() as session:
            study = get_study(session, study_id)
            assert study.name == "cli study" and study.strategy["name"] == "random"
            assert study.next_number == 8
    finally:
        database.dispose()


def test_the_cli_names_a_missing_study_in_one_line(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    make_study(storage)
    argv = ["import", "optuna", "--storage", storage, "--study", "nope"]
    assert main([*argv, "--database-url", f"sqlite:///{tmp_path / 't.db'}"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("tunelab import optuna:") and "nope" in line


@pytest.mark.slow
def test_a_study_larger_than_a_request_body_comes_in(client):
    """A long study's intermediate values outgrow the 4 MiB request limit; the import
    has a limit of its own."""
    document = _document(intermediate_values=[[k, 1.0 / (k + 1)] for k in range(200_000)])
    response = client.post(f"{API}/studies/import/optuna", json={"study": document})
    assert response.status_code == 201, response.text[:200]
    [trial] = _trials(client, response.json()["id"])
    points = client.get(f"{API}/trials/{trial['id']}/metrics", params={"limit": 1})
    assert points.status_code == 200
