"""Load: N concurrent ask / report / tell clients against a `tunelab serve` process on
PostgreSQL, for a fixed time. Checks the invariants afterwards and records throughput and
latency percentiles.

    .venv/bin/python bench/load.py --clients 64 --duration 180 --write-docs

Creates (and drops first) its own database, `--database-name` on the local server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.services import live_server, recreate_pg_database  # noqa: E402

STEPS_PER_TRIAL = 10
BATCH = 5  # points of each metric per report: two reports per trial


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged_points: int = 0
    told: dict[int, float] = field(default_factory=dict)
    trials: int = 0


async def client_loop(http: httpx.AsyncClient, study_id: int, stop_at: float, stats: Stats) -> None:
    async def timed(kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        response = await http.request(method, url, **kwargs)
        stats.latencies[kind].append(time.perf_counter() - started)
        return response

    while time.monotonic() < stop_at:
        try:
            asked = await timed("ask", "POST", f"/studies/{study_id}/trials")
            if asked.status_code == 409:
                await asyncio.sleep(0.05)
                continue
            if asked.status_code != 201:
                stats.errors.append(f"ask {asked.status_code}: {asked.text[:200]}")
                continue
            trial = asked.json()
            trial_id = trial["id"]
            last = 0.0
            for start in range(0, STEPS_PER_TRIAL, BATCH):
                batch = []
                for step in range(start + 1, start + BATCH + 1):
                    last = 1.0 / (step + trial["number"] % 97)
                    batch += [
                        {"name": "loss", "step": step, "value": last},
                        {"name": "acc", "step": step, "value": 1 - last},
                    ]
                sent = await timed("report", "POST", f"/trials/{trial_id}/metrics", json=batch)
                if sent.status_code != 200:
                    stats.errors.append(f"report {sent.status_code}: {sent.text[:200]}")
                    break
                stats.acknowledged_points += len(batch)
            done = await timed("tell", "POST", f"/trials/{trial_id}/complete", json={})
            if done.status_code != 200:
                stats.errors.append(f"tell {done.status_code}: {done.text[:200]}")
                continue
            stats.told[trial_id] = last
            stats.trials += 1
        except httpx.HTTPError as exc:
            stats.errors.append(f"{type(exc).__name__}: {exc}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def check(database_url: str, study_id: int, stats: Stats) -> dict[str, Any]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, number, state, value FROM trials WHERE study_id = :s ORDER BY number"),
            {"s": study_id},
        ).all()
        points = conn.execute(
            text(
                "SELECT count(*) FROM metric_points p JOIN trials t ON t.id = p.trial_id "
                "WHERE t.study_id = :s"
            ),
            {"s": study_id},
        ).scalar_one()
    engine.dispose()
    numbers = [r.number for r in rows]
    problems = []
    if numbers != list(range(len(numbers))):
        problems.append("trial numbers are not 0..n-1 once each")
    running = [r.id for r in rows if r.state in ("running", "queued")]
    if running:
        problems.append(f"{len(running)} trials left running or queued")
    if points != stats.acknowledged_points:
        problems.append(f"{points} points stored, {stats.acknowledged_points} acknowledged")
    values = {r.id: r.value for r in rows}
    wrong = [t for t, v in stats.told.items() if values.get(t) != v]
    if wrong:
        problems.append(f"{len(wrong)} trials hold another value than told")
    return {"trials": len(rows), "points": int(points), "problems": problems}


async def run(api: str, clients: int, duration_s: float) -> tuple[int, Stats, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"{api}/api/v1", timeout=60, limits=limits) as http:
        body = {
            "name": "load",
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": {
                "lr": {"type": "float", "low": 1e-5, "high": 0.1, "scale": "log"},
                "layers": {"type": "int", "low": 1, "high": 8},
                "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "adamw"]},
            },
            "strategy": {"name": "random", "seed": 1},
            "limits": {"max_trials": 1_000_000, "max_parallel_trials": clients * 2},
        }
        created = await http.post("/studies", json=body)
        created.raise_for_status()
        study_id = int(created.json()["id"])
        stats = Stats()
        started = time.monotonic()
        await asyncio.gather(
            *(client_loop(http, study_id, started + duration_s, stats) for _ in range(clients))
        )
        elapsed = time.monotonic() - started
    return study_id, stats, elapsed


def write_docs(section: str) -> None:
    """Replaces the `## Load` section of docs/benchmarks.md, leaving other sections alone."""
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Load"), None)
    if start is None:
        updated = current.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        updated = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds")
    parser.add_argument("--database-name", default="tunelab_bench_load")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    database_url = recreate_pg_database(args.database_name)
    from app.db.migrate import upgrade

    upgrade(database_url)
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"{args.database_name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with live_server(database_url, data_dir) as api:
        study_id, stats, elapsed = asyncio.run(run(api, args.clients, args.duration))
        # Trials still running when the clock ran out were told before the clients returned.
        verdict = check(database_url, study_id, stats)
        load_1m = os.getloadavg()[0]

    requests = sum(len(v) for v in stats.latencies.values())
    result: dict[str, Any] = {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "trials": stats.trials,
        "trials_per_s": round(stats.trials / elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1),
        "points_per_s": round(stats.acknowledged_points / elapsed, 1),
        "errors": len(stats.errors),
        "load_average_1m": round(load_1m, 1),
        "first_errors": stats.errors[:5],
        "invariants": verdict,
        "latency_ms": {
            kind: {
                "p50": round(1000 * statistics.median(values), 1),
                "p99": round(1000 * percentile(values, 0.99), 1),
                "max": round(1000 * max(values), 1),
            }
            for kind, values in sorted(stats.latencies.items())
        },
    }
    print(json.dumps(result, indent=2))
    if args.write_docs:
        write_docs(render(result))
    if stats.errors or verdict["problems"]:
        sys.exit(1)


def render(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    rows = "\n".join(
        f"| {kind} | {v['p50']} | {v['p99']} | {v['max']} |" for kind, v in latency.items()
    )
    ok = (
        "hold"
        if not result["invariants"]["problems"]
        else "FAILED: " + "; ".join(result["invariants"]["problems"])
    )
    return f"""## Load

`bench/load.py --clients {result["clients"]} --duration {result["duration_s"]:.0f}`: {result["clients"]}
concurrent asyncio clients (httpx) each loop ask -> two reports of 10 points -> tell, against one
`tunelab serve` process (uvicorn, one worker) on PostgreSQL, on the same machine
({platform.machine()}, {os.cpu_count()} CPUs, 1-minute load average {result["load_average_1m"]} at
the end of the run: the CPUs were shared with other work, so compare runs on one machine).

| | |
|---|---|
| trials finished | {result["trials"]} ({result["trials_per_s"]}/s) |
| requests | {result["requests_per_s"]}/s |
| metric points stored | {result["points_per_s"]}/s |
| errors | {result["errors"]} |
| invariants (numbers 0..n-1 once each, none left running, every acknowledged point stored, every told value kept) | {ok} |

| request | p50 ms | p99 ms | max ms |
|---|---|---|---|
{rows}

All clients work on one study, the worst case: ask and tell hold the study's row lock (so
no trial number or parallel slot is handed out twice) and serialize; reports without a
scheduler do not lock it. Reproduce: `.venv/bin/python bench/load.py --write-docs`
(PostgreSQL on 127.0.0.1:5432; the bench creates and drops its own database).
"""


if __name__ == "__main__":
    main()
