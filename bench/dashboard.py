"""Dashboard benchmark: a study of 10,000 trials and 500,000 metric points in Chromium.

Measures the time from navigation to the first chart painted and to all charts painted
on the study page, and the delay from a new metric point (POSTed to the API) to its
appearance on the learning-curves chart. Targets: < 2 s, < 5 s, < 1 s.

    .venv/bin/python bench/dashboard.py [--trials 10000] [--points 50] [--database-url URL]

Needs a built frontend (scripts/setup) and /usr/bin/chromium. The data is written
straight into a fresh database (SQLite by default), then served by `tunelab serve`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.migrate import upgrade  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.db.types import utcnow  # noqa: E402
from app.metrics.models import MetricPoint  # noqa: E402
from app.studies import service as studies  # noqa: E402
from app.studies.models import Study  # noqa: E402
from app.studies.schemas import StudyCreate  # noqa: E402
from app.trials.models import Trial  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.fixtures.services import live_server  # noqa: E402

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
    "batch_size": {"type": "int", "low": 16, "high": 256, "step": 16},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "layers": {"type": "int", "low": 1, "high": 8},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "adamw"]},
}


def populate(url: str, n_trials: int, points: int, running: int) -> tuple[int, int, int]:
    """A study with `n_trials` trials of `points` loss points each; returns the study id
    and a running trial's id."""
    rng = random.Random(0)
    database = Database(url)
    with database.session() as session:
        body = StudyCreate.model_validate(
            {
                "name": "dashboard bench",
                "objective": {"metric": "loss", "direction": "minimize"},
                "space": SPACE,
                "strategy": {"name": "random", "seed": 1},
                "limits": {
                    "max_trials": n_trials + 100,
                    "max_parallel_trials": 64,
                    "heartbeat_timeout_s": 7 * 86400,
                },  # no heartbeats during the bench
            }
        )
        study_id = studies.create_study(session, body).id
    start = utcnow() - timedelta(hours=10)
    best = (float("inf"), 0)
    trial_rows = []
    for i in range(n_trials):
        lr = 10 ** rng.uniform(-5, -1)
        state = (
            "running"
            if i >= n_trials - running
            else ("stopped" if rng.random() < 0.4 else "completed")
        )
        final = abs(rng.gauss(0, 0.05)) + abs(math.log10(lr) + 3) * 0.1
        began = start + timedelta(seconds=i * 3)
        trial_rows.append(
            {
                "id": None,
                "study_id": study_id,
                "number": i,
                "state": state,
                "params": {
                    "lr": lr,
                    "batch_size": rng.randrange(16, 257, 16),
                    "dropout": rng.uniform(0, 0.5),
                    "layers": rng.randint(1, 8),
                    "optimizer": rng.choice(["adam", "sgd", "adamw"]),
                },
                "value": None if state == "running" else final,
                "rung": -1,
                "extra": {},
                "source": "suggested",
                "retries": 0,
                "resumes": 0,
                "worker": f"gpu-{i % 8}:{i % 4}",
                "last_step": float(points - 1 if state != "stopped" else points // 3),
                "created_at": began,
                "started_at": began,
                "heartbeat_at": utcnow(),
                # As the lifecycle stamps them: each trial changed once, in order.
                "history_version": i + 1,
                "finished_at": None
                if state == "running"
                else began + timedelta(seconds=rng.uniform(20, 60)),
            }
        )
    with database.session() as session:
        for row in trial_rows:
            row.pop("id")
        for chunk in range(0, len(trial_rows), 2000):
            session.execute(insert(Trial), trial_rows[chunk : chunk + 2000])
    with database.sessions() as session:
        ids = list(
            session.scalars(
                select(Trial.id).where(Trial.study_id == study_id).order_by(Trial.number)
            )
        )
    rows = []
    total = 0
    now = utcnow()
    with database.session() as session:
        for trial_id, trial in zip(ids, trial_rows, strict=True):
            final = trial["value"] if trial["value"] is not None else 0.3
            if trial["value"] is not None and final < best[0]:
                best = (final, trial_id)
            last = int(trial["last_step"])
            for step in range(last + 1):
                rows.append(
                    {
                        "trial_id": trial_id,
                        "name": "loss",
                        "step": float(step),
                        "value": final + 2.0 / (step + 1),
                        "created_at": now,
                    }
                )
            total += last + 1
            if len(rows) >= 50_000:
                session.execute(insert(MetricPoint), rows)
                rows = []
        if rows:
            session.execute(insert(MetricPoint), rows)
        session.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(
                next_number=n_trials,
                best_value=best[0],
                best_trial_id=best[1],
                history_version=n_trials,
            )
        )
    database.dispose()
    return study_id, ids[-1], total


def filled(url: str) -> tuple[int, int, int]:
    """The study, a running trial and the point count of a database a fill left behind."""
    database = Database(url)
    with database.sessions() as session:
        study_id = session.scalars(
            select(Study.id).where(Study.name == "dashboard bench").order_by(Study.id.desc())
        ).first()
        if study_id is None:
            raise SystemExit(f"no bench study in {url}: run with --fill-only first")
        live_trial = session.scalars(
            select(Trial.id)
            .where(Trial.study_id == study_id, Trial.state == "running")
            .order_by(Trial.id.desc())
        ).first()
        total = session.scalar(select(func.count()).select_from(MetricPoint)) or 0
    database.dispose()
    assert live_trial is not None
    return study_id, live_trial, total


def _server_pid() -> int | None:
    """The `tunelab serve` child of this process (live_server does not expose it)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"serve" in cmdline:
            return int(proc.name)
    return None


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_export(base: str, study_id: int) -> None:
    """Time of a whole CSV and JSON export, and how much the server's resident memory
    rose above where it started (its peak is reset first; Linux's clear_refs)."""
    pid = _server_pid()
    with httpx.Client(base_url=f"{base}/api/v1", timeout=600) as api:
        for fmt in ("csv", "json"):
            if pid is not None:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
                before = _memory_kb(pid, "VmRSS")
            began = time.perf_counter()
            size = 0
            with api.stream("GET", f"/studies/{study_id}/trials.csv", params={"format": fmt}) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    size += len(chunk)
            took = time.perf_counter() - began
            grew = (_memory_kb(pid, "VmHWM") - before) / 1024 if pid is not None else float("nan")
            print(
                f"  export {fmt:<4} {took:6.2f} s  {size / 1e6:6.1f} MB  "
                f"server peak memory +{grew:.1f} MB over its {before / 1024:.0f} MB"
            )


def measure(
    base: str, study_id: int, live_trial: int, loads: int, probes: int
) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"first": [], "all": [], "point": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for _ in range(loads):
            page.goto(f"{base}/studies/{study_id}")
            page.wait_for_function("() => document.body.dataset.allCharts", timeout=120_000)
            first, last = page.evaluate(
                """() => {
                  const painted = [...document.querySelectorAll('.chart[data-painted]')].map(e => +e.dataset.painted);
                  return [Math.min(...painted) - performance.timeOrigin, +document.body.dataset.allCharts - performance.timeOrigin];
                }"""
            )
            out["first"].append(first / 1000)
            out["all"].append(last / 1000)
            painted = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('.chart[data-painted]')]
                     .map(e => [e.dataset.kind, ((+e.dataset.painted - performance.timeOrigin) / 1000).toFixed(2)]))"""
            )
            print("  painted at (s):", painted)
            # The page's own marks: request + JSON parse, and Plotly + paint, per figure.
            spans = page.evaluate(
                """() => Object.fromEntries(performance.getEntriesByType('measure')
                     .filter(m => m.name.startsWith('chart '))
                     .map(m => [m.name.slice(6), (m.duration / 1000).toFixed(2)]))"""
            )
            print("  browser time (s):", spans)
        # Let the stream connect, then time new points from POST to chart.
        page.wait_for_function(
            "() => document.getElementById('live-status').classList.contains('on')"
        )
        with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as api:
            # The next steps of the live trial (a rerun on the same database continues it).
            step = int(api.get(f"/trials/{live_trial}").json()["last_step"] or 0)
            for _ in range(probes):
                step += 1
                before = page.evaluate(
                    "() => +(document.getElementById('chart-curves').dataset.extended || 0)"
                )
                sent = time.time() * 1000
                posted = api.post(
                    f"/trials/{live_trial}/metrics",
                    json=[{"name": "loss", "step": step, "value": 0.5}],
                )
                posted.raise_for_status()
                page.wait_for_function(
                    "b => +(document.getElementById('chart-curves').dataset.extended || 0) > b",
                    arg=before,
                    timeout=10_000,
                )
                shown = page.evaluate(
                    "() => +document.getElementById('chart-curves').dataset.extended"
                )
                out["point"].append((shown - sent) / 1000)
                time.sleep(0.5)
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument(
        "--points",
        type=int,
        default=68,
        help="points of a full trial; stopped ones (40 %%) get a third: ~50 a trial",
    )
    parser.add_argument("--running", type=int, default=8)
    parser.add_argument("--loads", type=int, default=3, help="page loads to time")
    parser.add_argument("--probes", type=int, default=10, help="new points to time")
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a fresh SQLite file)"
    )
    parser.add_argument(
        "--fill-only", action="store_true", help="fill --database-url and stop (see --reuse)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the study a --fill-only run left in --database-url (no fill)",
    )
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    url = args.database_url or f"sqlite:///{data / 'bench.db'}"
    if args.reuse:
        study_id, live_trial, total = filled(url)
        print(f"reusing study {study_id}: {total} points ({url.split(':')[0]})")
    else:
        upgrade(url)
        began = time.perf_counter()
        study_id, live_trial, total = populate(url, args.trials, args.points, args.running)
        print(
            f"populated {args.trials} trials, {total} points in "
            f"{time.perf_counter() - began:.1f} s ({url.split(':')[0]})"
        )
    if args.fill_only:
        return 0
    with live_server(url, data, env={"TUNELAB_BROKER_URL": "", "TUNELAB_REDIS_URL": ""}) as base:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as api:
            for kind in (
                "history",
                "curves",
                "parallel",
                "slices",
                "contour",
                "importance",
                "rungs",
                "timeline",
            ):
                t0 = time.perf_counter()
                size = len(api.get(f"/studies/{study_id}/plots/{kind}").content)
                print(
                    f"  GET plots/{kind:<10} {time.perf_counter() - t0:6.2f} s  {size / 1e6:5.2f} MB"
                )
        results = measure(base, study_id, live_trial, args.loads, args.probes)
        measure_export(base, study_id)

    def line(label: str, values: list[float], target: float) -> str:
        med = statistics.median(values)
        verdict = "ok" if med < target else "MISSED"
        return f"{label:<34} median {med:5.2f} s  max {max(values):5.2f} s  (target < {target:g} s: {verdict})"

    print(line("first chart painted", results["first"], 2))
    print(line("all charts painted", results["all"], 5))
    print(line("new point -> on the chart", results["point"], 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
