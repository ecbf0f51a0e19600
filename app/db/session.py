"""Engine and sessions. The request (or background job) is the unit of work: services and
repositories only flush; the endpoint commits once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for work outside a request; commits on success, rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def ensure_sqlite_dir(url: str) -> None:
    """Creates the folder of a SQLite file, so that the first start needs no set-up."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _use_wal(cursor: Any) -> None:
    """Switches the file to WAL (it stays so). The switch needs a moment with no other
    connection in a transaction, and SQLite does not wait for that by itself."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    for _ in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")


# A pooled connection that served a request this long ago or less is taken as alive;
# older ones may have been cut by a database restart and are pinged before use.
PING_AFTER_IDLE_S = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for idle connections only. Pinging every checkout
    cost a round trip per request, a quarter of a metric report's; a connection used a
    moment ago that breaks fails its request (a 503 the client retries), and SQLAlchemy
    then renews every connection older than the failure."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool throws this connection away and checks out another.
            raise DisconnectionError(str(error)) from error


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_size=20, max_overflow=20)
        _ping_idle_connections(engine)
        return engine

    ensure_sqlite_dir(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Every transaction takes the write lock up front: SQLite then serializes asks
        # (as PostgreSQL's row lock does) and a read-then-write never fails on upgrade.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def in_session(request: Request, work: Callable[[Session], T]) -> T:
    """Runs `work` with a session of its own in one worker thread; `work` commits. For
    the busiest endpoints: a sync endpoint taking SessionDep hops to a thread for the
    session's opening, the endpoint and the session's closing, which costs more than the
    SQL of an ask or a tell."""
    database: Database = request.app.state.database

    def run() -> T:
        with database.sessions() as session:
            try:
                return work(session)
            except BaseException:
                session.rollback()
                raise

    return await run_in_threadpool(run)


def get_session(request: Request) -> Iterator[Session]:
    database: Database = request.app.state.database
    with database.sessions() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session)]
