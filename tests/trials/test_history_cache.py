"""The per-process history cache: brought up to date by the study's history version,
correct across processes (one cache each here), dropped on rollback, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from app.db.session import Database
from app.engine.base import TrialState
from app.metrics.repository import MetricRepository
from app.studies.models import Study
from app.trials.history import CACHE, HistoryCache, to_record
from app.trials.models import Trial
from tests.api.helpers import ask, create_study, report, tell


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def _change(database: Database, trial_id: int, **columns: object) -> None:
    """A strategy-visible change as the lifecycle writes one: under the study's row
    lock, the study's history version goes up and the trial carries it."""
    with database.session() as session:
        trial = session.get(Trial, trial_id)
        assert trial is not None
        study = session.execute(
            select(Study).where(Study.id == trial.study_id).with_for_update()
        ).scalar_one()
        study.history_version += 1
        trial.history_version = study.history_version
        for name, value in columns.items():
            setattr(trial, name, value)


def _truth(database: Database, study_id: int) -> list:
    with database.session() as session:
        trials = session.execute(
            select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)
        ).scalars()
        return [to_record(t) for t in trials]


def _cached(cache: HistoryCache, database: Database, study_id: int, curves: bool = False) -> list:
    with database.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        return cache.checkout(session, study, curves).trials()


@pytest.fixture
def study_id(client) -> int:  # type: ignore[no-untyped-def]
    study = create_study(client, limits={"max_trials": 50, "max_parallel_trials": 10})
    for _ in range(6):
        ask(client, study["id"])
    return int(study["id"])


def test_sync_reads_only_what_changed_and_nothing_when_the_version_is_current(
    database: Database, study_id: int
) -> None:
    cache = HistoryCache()
    assert _cached(cache, database, study_id) == _truth(database, study_id)
    with _statements(database) as seen:
        assert _cached(cache, database, study_id) == _truth(database, study_id)
    trial_queries = [s for s in seen if "FROM trials" in s and "history_version >" in s]
    assert not trial_queries  # the version matched: no query for trials
    first = _truth(database, study_id)[2]
    _change(database, first.id, state=TrialState.COMPLETED, value=0.5)
    with _statements(database) as seen:
        records = _cached(cache, database, study_id)
    assert len([s for s in seen if "history_version >" in s]) == 1
    assert records == _truth(database, study_id)


def test_two_processes_each_catch_up_from_the_database(database: Database, study_id: int) -> None:
    first, second = HistoryCache(), HistoryCache()
    trials = _truth(database, study_id)
    assert _cached(first, database, study_id) == trials
    assert _cached(second, database, study_id) == trials
    _change(database, trials[0].id, state=TrialState.COMPLETED, value=1.0)
    assert _cached(first, database, study_id) == _truth(database, study_id)
    _change(database, trials[1].id, state=TrialState.STOPPED, value=2.0, rung=1)
    _change(database, trials[0].id, extra={"note": 1})
    # The second never saw the first change on its own: it reads all three now.
    assert _cached(second, database, study_id) == _truth(database, study_id)
    assert _cached(first, database, study_id) == _truth(database, study_id)
    with database.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        ranked = first.checkout(session, study, False).index.ranked()
    assert [number for _, number, _ in ranked] == [trials[0].number, trials[1].number]


def test_a_transaction_that_does_not_commit_drops_what_it_read(
    database: Database, study_id: int
) -> None:
    cache = HistoryCache()
    trials = _truth(database, study_id)
    with pytest.raises(RuntimeError), database.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        # A change of its own, read into the cache, then rolled back.
        trial = session.get(Trial, trials[0].id)
        assert trial is not None
        study.history_version += 1
        trial.history_version = study.history_version
        trial.state = TrialState.FAILED
        session.flush()
        entry = cache.checkout(session, study, False)
        assert entry.index.records[trials[0].id].state == TrialState.FAILED
        raise RuntimeError("the request failed")
    assert len(cache) == 0
    # Another change takes the same version number: the cache must not skip it.
    _change(database, trials[1].id, state=TrialState.COMPLETED, value=3.0)
    assert _cached(cache, database, study_id) == _truth(database, study_id)


def test_a_change_of_the_transaction_not_yet_flushed_is_read(
    database: Database, study_id: int
) -> None:
    cache = HistoryCache()
    trials = _truth(database, study_id)
    _cached(cache, database, study_id)
    with database.session() as session:
        study = session.get(Study, study_id)
        trial = session.get(Trial, trials[0].id)
        assert study is not None and trial is not None
        study.history_version += 1
        trial.history_version = study.history_version
        trial.state = TrialState.STOPPED
        trial.value = 1.5
        entry = cache.checkout(session, study, False)
        assert entry.index.records[trial.id].state == TrialState.STOPPED
    assert _cached(cache, database, study_id) == _truth(database, study_id)


def test_a_read_only_transaction_keeps_the_cache(database: Database, study_id: int) -> None:
    cache = HistoryCache()
    with database.sessions() as session:  # closed without commit, as a read request
        study = session.get(Study, study_id)
        assert study is not None
        cache.checkout(session, study, False)
    assert len(cache) == 1


def test_finished_curves_are_read_once_for_the_median_rule(
    database: Database, study_id: int
) -> None:
    cache = HistoryCache()
    trials = _truth(database, study_id)
    with database.session() as session:
        MetricRepository(session).insert_points(
            trials[0].id, [("loss", 1.0, 4.0), ("loss", 2.0, 2.0)]
        )
    _change(database, trials[0].id, state=TrialState.COMPLETED, value=2.0)
    with database.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        index = cache.checkout(session, study, True).index
        assert list(index.step_averages(2.0)) == [3.0]
    _change(database, trials[1].id, state=TrialState.STOPPED, value=9.0)
    with _statements(database) as seen:
        _cached(cache, database, study_id, curves=True)
    # One query for the changed trials, one for the newly finished trial's curve.
    assert len([s for s in seen if "FROM metric" in s]) == 1


def test_the_cache_keeps_a_bounded_number_of_studies(client, database: Database) -> None:  # type: ignore[no-untyped-def]
    cache = HistoryCache(max_studies=2)
    ids = []
    for _ in range(3):
        study = create_study(client)
        ask(client, study["id"])
        ids.append(study["id"])
    for study_id in ids:
        assert len(_cached(cache, database, study_id)) == 1
    assert len(cache) == 2
    assert len(_cached(cache, database, ids[0])) == 1  # rebuilt from the database


def test_the_servers_cache_agrees_with_the_database_after_a_run(client, database: Database) -> None:  # type: ignore[no-untyped-def]
    """Asks, reports, pauses, resumes and tells through the API: every change the service
    makes must raise the history version, or the cache would miss it."""
    study = create_study(
        client,
        strategy={"name": "asha", "seed": 3, "mode": "pause"},
        fidelity={"param": "epoch", "min": 1, "max": 9, "reduction_factor": 3},
        early_stopping=None,
        limits={"max_trials": 12, "max_parallel_trials": 3},
    )
    for number in range(20):
        response = client.post(f"/api/v1/studies/{study['id']}/trials")
        if response.status_code != 201:
            break
        trial = response.json()
        budget = int(trial["budget"])
        decision = report(
            client,
            trial["id"],
            [
                {"name": "loss", "step": s, "value": (number % 5) + 1 / s}
                for s in range(1, budget + 1)
            ],
        )
        if decision["decision"] == "continue":
            tell(client, trial["id"])
    with database.session() as session:
        row = session.get(Study, study["id"])
        assert row is not None
        served = CACHE.checkout(session, row, False).trials()
    assert served == _truth(database, study["id"])
