"""piBO priors on Hartmann-6: tpe and gp without a prior, with one at the optimum, with a
misleading one (at the corner of the cube farthest from the optimum, where the function
is flat and poor), and with a deceptive one (at 1 - x*, the optimum mirrored through the
centre, which lies in the basin of Hartmann-6's second-best local minimum, -3.2032).

    python -m bench.strategies.priors [--seeds 5] [--confidence medium]

Targets (docs/benchmarks.md, "TPE and priors"): with the prior at the optimum, the median
regret after 20 trials is at most 1/10 of the same sampler's without a prior; with the
misleading one, after 50 trials at most 2x.
"""

from __future__ import annotations

import argparse
import statistics
import time
from multiprocessing import Pool
from typing import Any

from bench.strategies.bayes import regret_curve, run_ours
from bench.strategies.functions import PROBLEMS

CHECKPOINTS = (20, 50)
KINDS = ("none", "optimum", "misleading", "deceptive")
# Each kind with the default (the priors' values run first) and as piBO alone.
VARIANTS = (
    ("none", {}),
    ("optimum", {}),
    ("optimum, piBO only", {"prior_mode_first": False}),
    ("misleading", {}),
    ("misleading, piBO only", {"prior_mode_first": False}),
    ("deceptive", {}),
)


def prior_space(kind: str, confidence: str) -> dict[str, Any]:
    problem = next(p for p in PROBLEMS if p.name == "Hartmann6")
    assert problem.argmin is not None
    space = {name: dict(spec) for name, spec in problem.space.items()}
    if kind == "none":
        return space
    for name, spec in space.items():
        at = float(problem.argmin[name])
        if kind == "optimum":
            value = at
        elif kind == "misleading":
            value = 1.0 if at < 0.5 else 0.0
        else:
            value = 1.0 - at
        spec["prior"] = {"value": round(value, 6), "confidence": confidence}
    return space


def one(args: tuple[str, str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    sampler, variant, confidence, seed, trials, extra = args
    kind = variant.split(",")[0]
    options = {**dict(VARIANTS)[variant], **extra}
    problem = next(p for p in PROBLEMS if p.name == "Hartmann6")
    start = time.perf_counter()
    values = run_ours(
        problem,
        sampler,
        seed,
        trials,
        space_dict=prior_space(kind, confidence),
        options=options,
    )
    curve = regret_curve(values, problem.optimum)
    return {
        "sampler": sampler,
        "kind": variant,
        "seed": seed,
        "regret": {n: curve[n - 1] for n in CHECKPOINTS},
        "seconds": time.perf_counter() - start,
    }


def table(rows: list[dict[str, Any]], samplers: list[str]) -> str:
    lines = [
        "| sampler | prior | regret @20 | @50 | @20 / no prior's (target <= 0.1) "
        "| @50 / no prior's (target <= 2) | s / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for sampler in samplers:
        median: dict[tuple[str, int], float] = {}
        for kind, _ in VARIANTS:
            runs = [r for r in rows if r["sampler"] == sampler and r["kind"] == kind]
            for n in CHECKPOINTS:
                median[(kind, n)] = statistics.median(r["regret"][n] for r in runs)
        for kind, _ in VARIANTS:
            runs = [r for r in rows if r["sampler"] == sampler and r["kind"] == kind]
            ratio20 = median[(kind, 20)] / median[("none", 20)] if kind != "none" else None
            ratio50 = median[(kind, 50)] / median[("none", 50)] if kind != "none" else None
            seconds = statistics.median(r["seconds"] for r in runs)
            lines.append(
                f"| {sampler} ({len(runs)} seeds) | {kind} | {median[(kind, 20)]:.4g} | "
                f"{median[(kind, 50)]:.4g} | {'' if ratio20 is None else f'{ratio20:.3f}'} | "
                f"{'' if ratio50 is None else f'{ratio50:.2f}'} | {seconds:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="tpe,gp")
    parser.add_argument("--confidence", default="medium")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--beta", type=float, default=None, help="prior_beta (default 10)")
    args = parser.parse_args()
    samplers = args.samplers.split(",")
    extra = {} if args.beta is None else {"prior_beta": args.beta}
    work = [
        (sampler, kind, args.confidence, seed, max(CHECKPOINTS), extra)
        for sampler in samplers
        for kind, _ in VARIANTS
        for seed in range(args.seeds)
    ]
    work.sort(key=lambda job: job[0] != "gp")
    with Pool(args.processes) as pool:
        rows = pool.map(one, work, chunksize=1)
    print(table(rows, samplers))


if __name__ == "__main__":
    main()
