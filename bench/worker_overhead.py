"""Worker overhead: what running trials through Tunelab costs on top of the trials.

Starts a real API server (SQLite; in-process executor, or with --celery a Redis broker
and a real `tunelab worker`), runs studies of real subprocesses on one slot, and reports:

  end -> next start   time from a trial's script printing its last line to the next
                      trial's script printing its first (includes the interpreter start)
  line -> SIGTERM     time from a script printing a metric line that gets it stopped
                      (median rule) to the script receiving SIGTERM
  slot utilization    share of the wall time the slot has a trial process alive (from
                      its fork to its last line; the interpreter's start is the
                      trial's own cost), and, stricter, inside the scripts' own lines

    .venv/bin/python bench/worker_overhead.py [--celery redis://127.0.0.1:6379/6] [--trials 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = r"""
import argparse, os, signal, sys, time
from pathlib import Path
t0 = time.time()
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--work", type=float)
parser.add_argument("--linger", type=float)
args = parser.parse_args()
folder = Path(os.environ["TUNELAB_CHECKPOINT_DIR"])
def on_term(signum, frame):
    (folder / "sigterm").write_text(repr(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
# When this process was forked, from the kernel (10 ms ticks since boot): the slot is
# busy from here, as the interpreter's start is the trial's own cost.
def spawned_at():
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return t0
print(f"start spawned={spawned_at()!r} t={t0!r}", flush=True)
loss = args.x
counter = os.environ.get("BENCH_COUNTER")
if counter:
    # The first two runs are good, every later one worse than all before it: the
    # median rule stops each of those at its first line.
    n = int(Path(counter).read_text()) if Path(counter).exists() else 0
    Path(counter).write_text(str(n + 1))
    loss = 0.1 * (n + 1) if n < 2 else 1000.0 * n
time.sleep(args.work)
t1 = time.time()
print(f"epoch 1 loss={loss!r} t={t1!r}", flush=True)
(folder / "line").write_text(repr(t1))
if loss >= 1000:  # a bad trial goes on until a decision stops it
    time.sleep(args.linger)
(folder / "end").write_text(repr(time.time()))
"""

REGEX = r"epoch (?P<step>\d+) loss=(?P<value>\S+)"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate, timeout_s: float, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError("timed out")


def study_body(script: Path, queue: str | None, **extra) -> dict:
    execution = {
        "command": [sys.executable, str(script)],
        "metric_definitions": [{"name": "loss", "regex": REGEX}],
        "stop_grace_s": 5,
    }
    if queue:
        execution["queue"] = queue
    return {
        "name": "bench",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {
            "x": {"type": "float", "low": 0.1, "high": 1.0},
            "work": {"type": "fixed", "value": 0.0},
            "linger": {"type": "fixed", "value": 0.0},
        },
        "execution": execution,
        **extra,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> dict:
    data = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    script = data / "trial.py"
    script.write_text(SCRIPT)
    checkpoints = data / "checkpoints"
    port = free_port()
    env = {**os.environ, "TUNELAB_DATA_DIR": str(data), "TUNELAB_CHECKPOINT_ROOT": str(checkpoints)}
    server_cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{data / 'tunelab.db'}",
        "--log-level",
        "warning",
    ]
    queue = None
    if args.celery:
        server_cmd += ["--broker", args.celery]
        queue = f"bench-{uuid.uuid4().hex[:8]}"
    processes = [
        subprocess.Popen(
            server_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    ]
    if args.celery:
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "worker",
                    "--broker",
                    args.celery,
                    "--slots",
                    "1",
                    "--queues",
                    queue,
                    "--loglevel",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30)
    try:

        def healthy() -> bool:
            try:
                return api.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait(healthy, 120)
        if args.celery:
            time.sleep(5)  # the worker connects to the broker

        # 1 + 3: trials of `work` seconds, one slot.
        body = study_body(
            script, queue, limits={"max_trials": args.trials, "max_parallel_trials": 1}
        )
        body["space"]["work"]["value"] = args.work
        study = api.post("/studies", json=body).json()
        wait(
            lambda: api.get(f"/studies/{study['id']}").json()["state"] != "running",
            60 + args.trials * (args.work + 3),
            0.5,
        )
        trials = api.get(f"/studies/{study['id']}/trials", params={"limit": 1000}).json()["items"]
        spans = []
        lives = []  # (process forked, script's last line)
        for trial in sorted(trials, key=lambda t: t["number"]):
            text = api.get(f"/trials/{trial['id']}/logs").json()["text"]
            lines = text.splitlines()
            stamps = [float(line.rsplit("t=", 1)[1]) for line in lines if " t=" in line]
            spans.append((stamps[0], stamps[-1]))
            spawned = float(lines[0].split("spawned=", 1)[1].split()[0])
            lives.append((spawned, stamps[-1]))
        gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        runner_gaps = [lives[i + 1][0] - lives[i][1] for i in range(len(lives) - 1)]
        busy = sum(end - start for start, end in spans)
        utilization = busy / (spans[-1][1] - spans[0][0])
        alive = sum(end - start for start, end in lives)
        process_utilization = alive / (lives[-1][1] - lives[0][0])

        # 2: a metric line that the median rule answers with stop.
        body = study_body(
            script,
            queue,
            limits={"max_trials": 2 + args.stops, "max_parallel_trials": 1},
            early_stopping={"rule": "median", "min_trials": 2},
        )
        body["space"]["work"]["value"] = 0.3
        body["space"]["linger"]["value"] = 20.0
        body["execution"]["env"] = {"BENCH_COUNTER": str(data / "counter")}
        study = api.post("/studies", json=body).json()
        wait(
            lambda: api.get(f"/studies/{study['id']}").json()["state"] != "running",
            120 + args.stops * 5,
            0.5,
        )
        stops = []
        stop_states: dict[str, int] = {}
        trials = api.get(f"/studies/{study['id']}/trials", params={"limit": 1000}).json()["items"]
        for trial in trials:
            stop_states[trial["state"]] = stop_states.get(trial["state"], 0) + 1
            folder = checkpoints / f"study-{study['id']}" / f"trial-{trial['number']}"
            if trial["state"] == "stopped" and (folder / "sigterm").exists():
                stops.append(
                    float((folder / "sigterm").read_text()) - float((folder / "line").read_text())
                )
        # What no runner can save: starting the interpreter and exiting it, measured bare.
        bare = []
        for _ in range(5):
            began = time.time()
            out = subprocess.run(
                [sys.executable, str(script), "--x", "1", "--work", "0", "--linger", "0"],
                env={**env, "TUNELAB_CHECKPOINT_DIR": str(data)},
                capture_output=True,
                text=True,
            ).stdout
            ended = time.time()
            started = float(out.splitlines()[0].rsplit("t=", 1)[1])
            last = float(out.splitlines()[-1].rsplit("t=", 1)[1])
            bare.append((started - began) + (ended - last))
        return {
            "mode": "celery" if args.celery else "in-process",
            "load_average": os.getloadavg()[0],
            "bare_interpreter_start_exit_ms": statistics.median(bare) * 1000,
            "trials": len(spans),
            "work_s": args.work,
            "end_to_next_start_ms": {
                "p50": statistics.median(gaps) * 1000,
                "p95": percentile(gaps, 0.95) * 1000,
                "max": max(gaps) * 1000,
            },
            "line_to_sigterm_ms": {
                "trial_states": stop_states,
                "n": len(stops),
                "p50": statistics.median(stops) * 1000 if stops else None,
                "max": max(stops) * 1000 if stops else None,
            },
            # The slot's trial process alive (forked to last line) over the wall time: the
            # interpreter's start is the trial's, and runner_gap_ms is the rest.
            "slot_utilization_process": process_utilization,
            "runner_gap_ms": {
                "p50": statistics.median(runner_gaps) * 1000,
                "p95": percentile(runner_gaps, 0.95) * 1000,
            },
            # Only the script's own lines (first to last) count as busy.
            "slot_utilization_script": utilization,
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--celery", default=None, help="a redis:// broker URL: run through a real Celery worker"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--work", type=float, default=2.0, help="seconds each trial works")
    parser.add_argument("--stops", type=int, default=8, help="trials stopped by a decision")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
