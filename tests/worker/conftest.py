"""Helpers for tests that run real trial processes, servers and Celery workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.services import ROOT, free_port

TINY = str(Path(__file__).resolve().parent / "scripts" / "tiny_train.py")
LOSS_REGEX = r"epoch (?P<step>\d+) loss=(?P<value>\S+)"
TEST_REDIS = os.environ.get("TUNELAB_TEST_WORKER_REDIS", "redis://127.0.0.1:6379/5")


def tiny_study(**overrides: Any) -> dict[str, Any]:
    """A study of tiny_train.py: loss = x * 0.9**epoch, minimized, ASHA over epochs."""
    body: dict[str, Any] = {
        "name": "tiny",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.1, "high": 10.0}},
        "strategy": {"name": "asha", "mode": "stop", "sampler": "random", "seed": 3},
        "fidelity": {"param": "epochs", "min": 1, "max": 9, "reduction_factor": 3},
        "limits": {"max_trials": 12, "max_parallel_trials": 4, "heartbeat_timeout_s": 5},
        "execution": {
            "command": [sys.executable, TINY, "--sleep", "0.15"],
            "metric_definitions": [{"name": "loss", "regex": LOSS_REGEX}],
            "stop_grace_s": 2,
        },
    }
    body.update(overrides)
    return body


def wait_for(
    predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.1, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not read its status yet.
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def trial_pid(api: httpx.Client, trial_id: int) -> int | None:
    text = api.get(f"/trials/{trial_id}/logs").json()["text"]
    for line in text.splitlines():
        if line.startswith("pid ") and line.endswith(" start"):
            return int(line.split()[1])
    return None


def wait_study_done(api: httpx.Client, study_id: int, timeout_s: float) -> dict[str, Any]:
    return wait_for(
        lambda: (s := api.get(f"/studies/{study_id}").json())["state"] != "running" and s,
        timeout_s,
        interval_s=0.25,
        what=f"study {study_id} to finish",
    )


def all_trials(api: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    return api.get(f"/studies/{study_id}/trials", params={"limit": 1000}).json()["items"]


@contextmanager
def celery_worker(
    broker: str, queue: str, data_dir: Path, slots: int = 4
) -> Iterator[subprocess.Popen[bytes]]:
    """`tunelab worker` in a subprocess of its own process group; yields it once it consumes."""
    log_path = data_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    log = open(log_path, "w")  # noqa: SIM115
    env = {**os.environ, "TUNELAB_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            "--broker",
            broker,
            "--slots",
            str(slots),
            "--queues",
            queue,
            "--loglevel",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: "ready" in log_path.read_text() or process.poll() is not None,
            120,
            interval_s=0.2,
            what="the celery worker to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"worker exited: {log_path.read_text()}")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        log.close()


def unique_queue() -> str:
    return f"tunelab-test-{uuid.uuid4().hex[:10]}"


def assert_study_ran(api: httpx.Client, study_id: int) -> None:
    """12 trials ended; ASHA stopped some and their processes are gone; the completed
    trials' metrics are exactly the values their scripts printed."""
    study = wait_study_done(api, study_id, 90)
    assert study["state"] == "completed", study["state_reason"]
    trials = all_trials(api, study_id)
    assert len(trials) == 12
    states = [t["state"] for t in trials]
    assert set(states) <= {"completed", "stopped"}, states
    assert "stopped" in states and "completed" in states
    cut_short = 0
    for trial in trials:
        pid = trial_pid(api, trial["id"])
        assert pid is not None and not pid_alive(pid)
        if trial["state"] == "stopped":
            points = api.get(f"/trials/{trial['id']}/metrics", params={"name": "loss"}).json()[
                "items"
            ]
            cut_short += len(points) < 9
    # Stopped at a lower rung, the process ended before its last epoch.
    assert cut_short >= 1
    done = next(t for t in trials if t["state"] == "completed")
    text = api.get(f"/trials/{done['id']}/logs").json()["text"]
    printed = [(float(m["step"]), float(m["value"])) for m in re.finditer(LOSS_REGEX, text)]
    stored = [
        (p["step"], p["value"]) for p in api.get(f"/trials/{done['id']}/metrics").json()["items"]
    ]
    assert stored == printed and len(printed) == 9


@contextmanager
def thread_server(database_url: str, data_dir: Path, **settings: Any) -> Iterator[str]:
    """The API app under uvicorn in a thread of the test process: a real HTTP server (and,
    with run_trials, a real executor) without paying a second interpreter's start."""
    import threading

    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app
    from app.settings import Settings

    upgrade(database_url)
    settings.setdefault("broker_url", "")  # never a broker from the environment by accident
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = Settings(
        data_dir=data_dir,
        database_url=database_url,
        api_url=url,
        port=port,
        reaper_interval_s=0.5,
        **settings,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True, name=f"api-{port}")
    thread.start()
    try:
        wait_for(
            lambda: server.started or not thread.is_alive(),
            60,
            interval_s=0.05,
            what="the API thread",
        )
        if not thread.is_alive():
            raise RuntimeError("the API server thread ended")
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
