"""`tunelab serve --workers 2`: two real API processes on PostgreSQL and Redis. One runs the
trials and another takes over when it dies; live views hear changes made through either."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.services import (
    REDIS_URL,
    live_server,
    postgres_available,
    recreate_pg_database,
    redis_available,
    run_cli,
)
from tests.fixtures.studies import study_body
from tests.worker.conftest import tiny_study, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _holds(pid: int, lock_file: Path) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if Path(os.readlink(fd)) == lock_file:
                return True
        except OSError:
            continue
    return False


class Server:
    def __init__(self, base: str, data_dir: Path) -> None:
        self.base = base
        self.data_dir = data_dir
        port = base.rsplit(":", 1)[1]
        self.parent = next(
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and f"serve --port {port} " in _cmdline(int(p.name))
        )

    def workers(self) -> list[int]:
        return [pid for pid in _children(self.parent) if "spawn_main" in _cmdline(pid)]

    def leaders(self) -> list[int]:
        locks = list(self.data_dir.glob("serve-*.lock"))
        return [pid for pid in self.workers() for lock in locks if _holds(pid, lock)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Server]:
    if not (postgres_available() and redis_available()):
        pytest.skip("needs PostgreSQL and Redis")
    prefix = os.environ.get("TUNELAB_TEST_DB_PREFIX", "tunelab_test")
    url = recreate_pg_database(f"{prefix}_workers_{worker_id}")
    data_dir = tmp_path_factory.mktemp("workers")
    env = {"TUNELAB_REDIS_URL": REDIS_URL}
    with live_server(url, data_dir, env=env, extra_args=["--workers", "2"]) as base:
        server = Server(base, data_dir)
        wait_for(lambda: len(server.workers()) == 2, 30, what="two worker processes")
        yield server


def _run_study(api: httpx.Client, name: str) -> list[dict[str, object]]:
    body = tiny_study(
        name=name,
        strategy={"name": "random", "seed": 5},
        fidelity=None,
        limits={"max_trials": 4, "max_parallel_trials": 2, "heartbeat_timeout_s": 5},
    )
    study = api.post("/studies", json=body).json()

    def finished() -> list[dict[str, object]] | None:
        trials = api.get(f"/studies/{study['id']}/trials").json()["items"]
        done = [t for t in trials if t["state"] == "completed"]
        return trials if len(done) == 4 else None

    return wait_for(finished, 60, what=f"{name}: four completed trials")


def test_one_process_runs_the_trials_and_another_takes_over_when_it_dies(server: Server) -> None:
    leaders = wait_for(server.leaders, 15, what="a leader")
    assert len(leaders) == 1, leaders
    with httpx.Client(base_url=f"{server.base}/api/v1", timeout=30) as api:
        trials = _run_study(api, "before")
        assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
        # Each trial's script ran once: one start line in its console output.
        for trial in trials:
            log = api.get(f"/trials/{trial['id']}/logs").json()["text"]
            assert log.count(" start\n") == 1, log

        os.kill(leaders[0], signal.SIGKILL)
        successors = wait_for(
            lambda: [p for p in server.leaders() if p != leaders[0]], 20, what="a new leader"
        )
        assert len(successors) == 1
        assert len(_run_study(api, "after")) == 4


def test_live_views_hear_changes_made_through_either_process(server: Server) -> None:
    with httpx.Client(base_url=f"{server.base}/api/v1", timeout=30) as api:
        study = api.post("/studies", json=study_body(name="live")).json()
        trial = api.post(f"/studies/{study['id']}/trials").json()
    heard: list[dict[str, object]] = []
    ready = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{server.base}/api/v1/studies/{study['id']}/events") as stream,
        ):
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    if event == "ready":
                        ready.set()
                    elif event == "metrics":
                        heard.append(json.loads(line.removeprefix("data: ")))
                        if len(heard) == 30:
                            return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    # A new connection each: the kernel hands connections to either process.
    for step in range(30):
        with httpx.Client(base_url=f"{server.base}/api/v1", timeout=30) as api:
            reported = api.post(
                f"/trials/{trial['id']}/metrics", json=[{"name": "loss", "step": step, "value": 1}]
            )
            assert reported.status_code == 200, reported.text
    listener.join(15)
    assert len(heard) == 30


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("sqlite:///{dir}/one.db", "needs PostgreSQL"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "needs Redis"),
    ],
)
def test_more_processes_need_postgresql_and_redis(
    tmp_path: Path, database: str, expected: str
) -> None:
    env = {
        **os.environ,
        "TUNELAB_DATA_DIR": str(tmp_path),
        "TUNELAB_REDIS_URL": "",
        "TUNELAB_BROKER_URL": "",
    }
    url = database.format(dir=tmp_path)
    done = run_cli("serve", "--workers", "2", "--database-url", url, env=env, timeout=60)
    assert done.returncode == 2
    assert expected in done.stderr
