"""Webhook latency: from the API call that makes a new best value to the receiver hearing
it, beside the physical floor (a bare POST of the same size to the same receiver).

`tunelab serve` runs in a subprocess (SQLite, PostgreSQL, and PostgreSQL with two API
processes and Redis) with a webhook on one
study pointing at a receiver in this process (http.server in a thread on 127.0.0.1).
While two other studies run (TPE: ask/tell; ASHA: ask, report points, tell, from two
threads), this process tells the measured study 200 ever better values, one at a time:
each tell is a new best, and its latency is the receiver's arrival time minus the time
just before the tell was sent (one clock). Also timed: the tell's own round trip, and
200 bare POSTs from this process to the receiver.

    nice .venv/bin/python bench/webhooks.py             # all three (under two minutes)
    nice .venv/bin/python bench/webhooks.py --sqlite    # SQLite only

Target: a receiver hears a new best within a second (p95, max).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.services import (  # noqa: E402
    REDIS_URL,
    live_server,
    postgres_available,
    recreate_pg_database,
    redis_available,
)
from tests.webhooks.receiver import Receiver  # noqa: E402

N = 200
# Pause of each load thread between its trials.
PACE_S = 0.05
SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 0.1, "scale": "log"},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "layers": {"type": "int", "low": 1, "high": 8},
}


def study(client: httpx.Client, name: str, strategy: dict[str, Any], **more: Any) -> int:
    body = {
        "name": name,
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "strategy": strategy,
        "limits": {"max_trials": 1_000_000, "max_parallel_trials": 64},
        **more,
    }
    answer = client.post("/api/v1/studies", json=body)
    answer.raise_for_status()
    return int(answer.json()["id"])


def loss(params: dict[str, Any], epoch: int) -> float:
    return abs(params.get("lr", 0.01) - 0.01) * 10 + params.get("dropout", 0.1) + 1.0 / epoch


def background(url: str, stop: threading.Event, kind: str, counts: dict[str, int]) -> None:
    """A TPE study (ask, tell) or an ASHA study (ask, report epochs, tell) running."""
    with httpx.Client(base_url=url, timeout=30) as client:
        if kind == "tpe":
            sid = study(client, "load tpe", {"name": "tpe", "seed": 1})
        else:
            sid = study(
                client,
                "load asha",
                {"name": "asha", "seed": 2},
                fidelity={"param": "epochs", "min": 1, "max": 9},
            )
        while not stop.is_set():
            trial = client.post(f"/api/v1/studies/{sid}/trials").json()
            tid, params = trial["id"], trial["params"]
            if kind == "tpe":
                client.post(f"/api/v1/trials/{tid}/complete", json={"value": loss(params, 9)})
            else:
                for epoch in range(1, 10):
                    point = [{"name": "loss", "step": epoch, "value": loss(params, epoch)}]
                    decision = client.post(f"/api/v1/trials/{tid}/metrics", json=point).json()
                    if decision.get("action", "continue") != "continue":
                        break
                client.post(f"/api/v1/trials/{tid}/complete", json={})
            counts[kind] = counts.get(kind, 0) + 1
            stop.wait(PACE_S)  # studies that run, not a flood (bench/load.py floods)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered) * 1000,
        "p95": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "max": ordered[-1] * 1000,
    }


def bare_posts(receiver: Receiver, size: int) -> list[float]:
    body = json.dumps({"pad": "x" * max(0, size - 12)}).encode()
    out = []
    with httpx.Client(timeout=5) as client:
        for _ in range(N):
            before = len(receiver.heard)
            started = time.monotonic()
            client.post(receiver.url, content=body, headers={"Content-Type": "application/json"})
            heard = receiver.wait_for(before + 1)[before]
            out.append(heard.at - started)
    return out


def run(database_url: str, label: str, workers: int = 1) -> dict[str, Any]:
    receiver = Receiver().start()
    stop = threading.Event()
    counts: dict[str, int] = {}
    env = {"TUNELAB_REDIS_URL": REDIS_URL} if workers > 1 else None
    args = ["--workers", str(workers)] if workers > 1 else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(database_url, Path(tmp), env=env, extra_args=args) as url,
    ):
        threads = [
            threading.Thread(target=background, args=(url, stop, kind, counts), daemon=True)
            for kind in ("tpe", "asha")
        ]
        for thread in threads:
            thread.start()
        latencies, tells, after = [], [], []
        with httpx.Client(base_url=url, timeout=30) as client:
            sid = study(client, "measured", {"name": "random", "seed": 3})
            hook = client.post(
                "/api/v1/webhooks",
                json={"url": receiver.url, "study_id": sid, "events": ["study.new_best"]},
            )
            hook.raise_for_status()
            time.sleep(1.0)  # the load is under way
            for i in range(N):
                trial = client.post(f"/api/v1/studies/{sid}/trials").json()
                started = time.monotonic()
                client.post(
                    f"/api/v1/trials/{trial['id']}/complete", json={"value": 1.0 - i * 1e-3}
                ).raise_for_status()
                told = time.monotonic()
                heard = receiver.wait_for(i + 1, "study.new_best", timeout=10)[i]
                assert heard.json["trial"]["id"] == trial["id"]
                latencies.append(heard.at - started)
                tells.append(told - started)
                after.append(max(0.0, heard.at - told))
            size = len(receiver.heard[-1].body)
        stop.set()
        for thread in threads:
            thread.join(30)
        floor = bare_posts(receiver, size)
    receiver.stop()
    return {
        "database": label,
        "new_best_heard": percentiles(latencies),
        "tell_round_trip": percentiles(tells),
        "heard_after_tell_returned": percentiles(after),
        "bare_post": percentiles(floor),
        "load_trials": dict(counts),
        "body_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sqlite", action="store_true", help="SQLite only")
    args = parser.parse_args()
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.db", "SQLite"))
    if not args.sqlite and postgres_available():
        url = recreate_pg_database("webhooks_bench")
        results.append(run(url, "PostgreSQL"))
        if redis_available():
            # Two API processes: a tell served by the one that does not send is heard
            # through the live hub's Redis fan-out.
            url = recreate_pg_database("webhooks_bench")
            results.append(run(url, "PostgreSQL, 2 API processes", workers=2))
    print(f"ran in {time.monotonic() - started:.0f} s")
    print(
        "| database | new best heard: p50 / p95 / max (ms) | the tell alone | "
        "heard after the tell returned | bare POST (floor) | load trials (TPE, ASHA) |"
    )
    print("|---|---|---|---|---|---|")

    def cells(p: dict[str, float]) -> str:
        return f"{p['p50']:.1f} / {p['p95']:.1f} / {p['max']:.1f}"

    for r in results:
        print(
            f"| {r['database']} | {cells(r['new_best_heard'])} | {cells(r['tell_round_trip'])} | "
            f"{cells(r['heard_after_tell_returned'])} | {cells(r['bare_post'])} | "
            f"{r['load_trials'].get('tpe', 0)}, {r['load_trials'].get('asha', 0)} |"
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
