"""python -m bench.strategies [--parts bayes,mf,latency] [--seeds 3] [--mf-seeds 10] ...

Prints markdown tables (pasted into docs/benchmarks.md, "Strategies") and keeps the raw
results in .bench-cache/strategies/results.json."""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections import defaultdict
from multiprocessing import Pool
from typing import Any

from bench.strategies import bayes, curves, latency, multifidelity
from bench.strategies.functions import PROBLEMS


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _fmt(value: float, digits: int = 3) -> str:
    if math.isinf(value):
        return "not reached"
    return f"{value:.{digits}g}"


def bayes_table(rows: list[dict[str, Any]]) -> str:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["problem"], row["sampler"])].append(row)
    lines = [
        "| problem | sampler | regret @20 | @50 | @100 | s / run |",
        "|---|---|---|---|---|---|",
    ]
    order = [p.name for p in PROBLEMS]
    samplers = [*bayes.OURS, *bayes.OPTUNA]
    for (problem, sampler), runs in sorted(
        grouped.items(), key=lambda item: (order.index(item[0][0]), samplers.index(item[0][1]))
    ):
        cells = [
            _fmt(_median([r["regret"][n] for r in runs if n in r["regret"]]))
            for n in bayes.CHECKPOINTS
        ]
        seconds = _median([r["seconds"] for r in runs])
        lines.append(
            f"| {problem} | {sampler} ({len(runs)} seeds) | {' | '.join(cells)} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def latency_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| sampler | finished trials | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['sampler']} | {row['finished']} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} "
            f"| {row['cpu_p50_ms']:.0f} | {row['cpu_p99_ms']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.strategies")
    parser.add_argument("--parts", default="bayes,mf,latency")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the Bayesian runs")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--gp-trials", type=int, default=50, help="trials of the GP samplers")
    parser.add_argument("--optuna-gp-seeds", type=int, default=3)
    parser.add_argument(
        "--mf-seeds", type=int, default=10, help="seeds of the multi-fidelity replays"
    )
    parser.add_argument("--tasks", default=",".join(curves.TASKS))
    parser.add_argument(
        "--target-percentile",
        type=float,
        default=3.0,
        help="the replay target: this percentile of the table's final values",
    )
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {}
    out: list[str] = []
    started = time.perf_counter()
    if "mf" in parts:
        multifidelity.TARGET_PERCENTILE = args.target_percentile
        for task in args.tasks.split(","):
            curves.load(task, args.processes)  # tabulated once, before the pool splits work
    with Pool(args.processes) as pool:
        if "latency" in parts:
            # Alone first, so that the timings are not shared with other jobs' CPU.
            results["latency"] = [latency.one(job) for job in latency.jobs()]
            out += ["### Suggest latency", "", latency_table(results["latency"]), ""]
        if "bayes" in parts:
            results["bayes"] = pool.map(
                bayes.one,
                bayes.jobs(args.seeds, args.trials, args.gp_trials, args.optuna_gp_seeds),
                chunksize=1,
            )
            out += [
                f"### Bayesian samplers (median of {args.seeds} seeds)",
                "",
                bayes_table(results["bayes"]),
                "",
            ]
        if "mf" in parts:
            tasks = args.tasks.split(",")
            mf_jobs = multifidelity.jobs(args.mf_seeds, tasks, args.target_percentile)
            results["mf"] = pool.map(multifidelity.one, mf_jobs, chunksize=1)
            out += [
                f"### Multi-fidelity replay (target: percentile {args.target_percentile:g} "
                f"of final values, median of {args.mf_seeds} seeds)",
                "",
                multifidelity.target_table(results["mf"]),
                "",
            ]
    out.append(
        f"Total run time: {time.perf_counter() - started:.0f} s on {args.processes} processes."
    )
    curves.CACHE.mkdir(parents=True, exist_ok=True)
    suffix = "-".join(sorted(parts)) + (
        f"-p{args.target_percentile:g}-{args.tasks.replace(',', '-')}" if "mf" in parts else ""
    )
    (curves.CACHE / f"results-{suffix}.json").write_text(json.dumps(results, indent=1, default=str))
    (curves.CACHE / f"results-{suffix}.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
