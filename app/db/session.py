"""Engine and sessions, and the unit of work: one transaction per write request (or
background job), committed once at its end and rolled back when it raises. Services and
repositories only flush; nothing else commits.

- Write endpoints: `await unit_of_work(request, work)` runs `work(session)` in one worker
  thread and commits when it returns.
- Read endpoints: `SessionDep`, a session that never commits.
- Background jobs, the CLI and a metric report: `with database.session() as session:`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Turns:
    """First come, first served turns per key (a study), in one API process.

    Units of work that lock a study's row (ask, tell, a scheduler's decision on a report)
    wait for their turn here, in the event loop, before they take a worker thread and a
    pooled connection. Without it, 64 clients on one study park 32 threads per process on
    the row lock: each holds a
    connection, PostgreSQL wakes them in no fixed order across processes, and the one
    holding the lock shares the interpreter with all the others, so the time the row stays
    locked grows with the crowd (a convoy: fewer requests per second at 64 clients than at
    8, and a p99 many times the p50). Here at most `depth` of them per study and process
    are in a thread; the database lock then sees one waiter per process, and the rest
    queue in arrival order at the cost of a coroutine each."""

    def __init__(self, depth: int = 1) -> None:
        self.depth = depth
        # key -> (semaphore, units holding or waiting); dropped when none is left.
        self._turns: dict[Hashable, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        semaphore, users = self._turns.get(key) or (asyncio.Semaphore(self.depth), 0)
        self._turns[key] = (semaphore, users + 1)
        try:
            async with semaphore:  # asyncio's semaphore wakes its waiters in arrival order
                yield
        finally:
            semaphore, users = self._turns[key]
            if users == 1:
                del self._turns[key]
            else:
                self._turns[key] = (semaphore, users - 1)

    def __len__(self) -> int:
        return len(self._turns)


# Study-locking units of work per study and API process in a thread at once: one runs
# (or waits on the row lock) while the next one's request is parsed and queued.
STUDY_TURN_DEPTH = 1


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.study_turns = Turns(STUDY_TURN_DEPTH)

    @contextmanager
    def session(
        self, *, autocommit: bool = False, commit_on: tuple[type[Exception], ...] = ()
    ) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back when it raises.

        `autocommit`: on PostgreSQL every statement is a transaction of its own, with no
        BEGIN and COMMIT round trips; for work that is one statement (a metric report).
        The closing commit still delivers the session's notifications.
        `commit_on`: errors that end the work but keep what it did before them (an ask
        that finds its study finished keeps that verdict, then answers 410)."""
        with self.sessions() as session:
            if autocommit and not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            try:
                yield session
            except commit_on:
                session.commit()
                raise
            except BaseException:
                session.rollback()
                raise
            session.commit()

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


async def unit_of_work(
    request: Request,
    work: Callable[[Session], T],
    *,
    commit_on: tuple[type[Exception], ...] = (),
    study_id: int | None = None,
) -> T:
    """Runs `work(session)` as one unit of work (`Database.session`) in one worker thread:
    the session opens, the work runs and the transaction commits there. Every write
    endpoint goes through here. A sync endpoint with a session dependency would hop
    threads for the session's opening, the endpoint and the commit: more than the SQL of
    an ask or a tell costs.

    `study_id`: the work locks this study's row; it waits for its turn (`Turns`) first."""
    database: Database = request.app.state.database

    def run() -> T:
        with database.session(commit_on=commit_on) as session:
            return work(session)

    if study_id is None:
        return await run_in_threadpool(run)
    async with database.study_turns.turn(study_id):
        return await run_in_threadpool(run)


async def read_in_thread(request: Request, read: Callable[[Session], T]) -> T:
    """Runs `read(session)`, one read statement, in a worker thread (autocommitted on
    PostgreSQL: no BEGIN and COMMIT round trips)."""
    database: Database = request.app.state.database

    def run() -> T:
        with database.session(autocommit=True) as session:
            return read(session)

    return await run_in_threadpool(run)


def get_session(request: Request) -> Iterator[Session]:
    """A session for a read endpoint: it never commits; closing it ends the transaction."""
    database: Database = request.app.state.database
    with database.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
