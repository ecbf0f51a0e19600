"""The unit of work (`Database.session`, `unit_of_work`): one commit at the end, a
rollback on error, errors that keep the work, and autocommit for one-statement work."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import Role, Token
from app.core.errors import Gone, install_error_handlers
from app.core.notify import Change, notify, subscribe
from app.db.session import Database, unit_of_work


def _token(name: str) -> Token:
    return Token(name=name, role=Role.MEMBER, token_hash=name.ljust(64, "0"), prefix="tl_")


def _names(database: Database) -> set[str]:
    with database.sessions() as session:
        return set(session.scalars(select(Token.name)))


def test_the_work_is_committed_once_at_the_end(database: Database) -> None:
    with database.session() as session:
        session.add(_token("kept"))
        session.flush()
        if not database.is_sqlite:  # there a reader would wait for the write lock
            assert "kept" not in _names(database)  # not before the end
    assert "kept" in _names(database)


def test_an_error_rolls_the_work_back(database: Database) -> None:
    with pytest.raises(ValueError), database.session() as session:
        session.add(_token("dropped"))
        session.flush()
        raise ValueError("boom")
    assert "dropped" not in _names(database)


def test_commit_on_keeps_the_work_and_still_raises(database: Database) -> None:
    with pytest.raises(Gone), database.session(commit_on=(Gone,)) as session:
        session.add(_token("verdict"))
        session.flush()
        raise Gone("the study is completed", field="state")
    assert "verdict" in _names(database)
    with pytest.raises(ValueError), database.session(commit_on=(Gone,)) as session:
        session.add(_token("other error"))
        session.flush()
        raise ValueError("not a kept error")
    assert "other error" not in _names(database)


def test_autocommit_stores_each_statement_at_once_on_postgresql(database: Database) -> None:
    delivered: list[Change] = []
    unsubscribe = subscribe(delivered.append)
    try:
        with database.session(autocommit=True) as session:
            session.add(_token("at once"))
            session.flush()
            notify(session, 1, "study")
            # PostgreSQL: the statement was its own transaction. SQLite: one transaction
            # (every transaction there takes the write lock, so no other reader waits).
            if not database.is_sqlite:
                assert "at once" in _names(database)
            assert delivered == []
    finally:
        unsubscribe()
    assert "at once" in _names(database)
    assert [c.kind for c in delivered] == ["study"]  # delivered by the closing commit


def test_an_endpoint_unit_of_work_runs_and_commits_in_one_thread(database: Database) -> None:
    app = FastAPI()
    app.state.database = database
    install_error_handlers(app)

    @app.post("/tokens/{name}")
    async def create(name: str, request: Request) -> int:
        def work(session: Session) -> int:
            session.add(_token(name))
            session.flush()
            if name == "refused":
                raise Gone("refused", field="name")
            return int(session.scalar(select(func.count(Token.id))) or 0)

        return await unit_of_work(request, work)

    with TestClient(app) as client:
        assert client.post("/tokens/first").json() >= 1
        assert client.post("/tokens/refused").status_code == 410
    assert "first" in _names(database) and "refused" not in _names(database)
