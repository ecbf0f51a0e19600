"""Population-based training (pbt, pb2) against fixed-config strategies at equal compute.

    nice -n 10 .venv/bin/python -m bench.strategies.pbt                  # both parts
    nice -n 10 .venv/bin/python -m bench.strategies.pbt --parts sim --seeds 10
    nice -n 10 .venv/bin/python -m bench.strategies.pbt --parts torch    # needs torch
    .venv/bin/python -m bench.strategies.pbt --parts cost                # pb2's decision

Part `sim`: a simulated training run whose best learning rate moves. The loss starts at 1
and each epoch t multiplies it by

    (1 - 0.3 * exp(-(d / 0.3) ** 2) * exp(-((wd - 0.3) / 0.4) ** 2)) * (1 + 0.4 * max(0, d - 0.3))
    d = log10 lr - b(t),   b(t) = -1 - t / T   (the best lr falls from 0.1 to 0.01)

an epoch gains near the best lr and undoes progress when the lr is well above it (training
that oscillates), so a constant lr is right for part of the run only, and a schedule
that follows b(t) wins. Reported values carry 3 % multiplicative noise; the score is the
true (noise-free) final loss of the trial the strategy ends with (its best reported
complete trial), the lower the better. 4 workers, T = 40 epochs, every strategy gets the
same compute: 160 trained epochs (4 x T):
- pbt, pb2: a population of 4, perturbation interval 2 epochs;
- asha (stop mode, random sampler, rungs 1, 3, 9, 27, 40) until 160 epochs are spent;
- random: 4 configs trained to T;
- best fixed config: the best constant (lr, wd) of a 200 x 20 grid (an oracle that no
  fixed-config strategy can beat, spending 4,000 x T).
Workers finish an epoch in 1 +- 0.2 time units (seeded), so members reach their
boundaries at different times (the strategies are asynchronous). A paused member's state
is snapshotted at its boundary and an exploit copies the donor's snapshot, as the worker
does with checkpoint folders (worker/checkpoints.py).

Part `cost`: the time of one pb2 explore (fit the GP, maximise UCB) on 50 and 200
observations (two params, three running members), median and max of 7 seeds.

Part `torch`: a real run through the in-process executor: an MLP on scikit-learn's
digits, trained by SGD, pbt over the learning rate (population 4, 16 epochs, interval 4),
against random search over the same space with the same 4 x 16 epochs. It prints the
checkpoint copies the runner made (from the trials' logs) and the best validation
accuracy of each.
"""

from __future__ import annotations

import argparse
import copy
import heapq
import json
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.engine import registry
from app.engine.base import Action, Fidelity, SearchExhausted, StudyContext, TrialState
from app.engine.memory import MemoryStudy
from app.engine.space import SearchSpace

T = 40
WORKERS = 4
POPULATION = 4
INTERVAL = 2
BUDGET = WORKERS * T  # trained epochs every strategy gets
NOISE = 0.03
SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
        "wd": {"type": "float", "low": 0.0, "high": 1.0},
    }
)


DECADES = 1.0  # how far the best lr falls over the run
WIDTH = 0.3  # how far (in decades) from the best lr an epoch still gains much


def best_log_lr(t: float) -> float:
    return -1.0 - DECADES * t / T


HARM = 0.4  # how much an epoch with too high an lr undoes, per decade above the optimum


def factor(params: dict[str, Any], t: int) -> float:
    """What epoch t multiplies the loss by: a gain near the best lr, and a loss (training
    that oscillates) when the lr is more than WIDTH decades above it."""
    offset = math.log10(params["lr"]) - best_log_lr(t)
    gain = 0.3 * math.exp(-((offset / WIDTH) ** 2)) * math.exp(-(((params["wd"] - 0.3) / 0.4) ** 2))
    harm = HARM * max(0.0, offset - WIDTH)
    return (1 - gain) * (1 + harm)


def fixed_final(params: dict[str, Any]) -> float:
    loss = 1.0
    for t in range(1, T + 1):
        loss *= factor(params, t)
    return loss


def best_fixed() -> tuple[float, dict[str, float]]:
    best = (math.inf, {})
    for i in range(200):
        lr = 10 ** (-4 + 4 * i / 199)
        for j in range(20):
            params = {"lr": lr, "wd": j / 19}
            value = fixed_final(params)
            if value < best[0]:
                best = (value, params)
    return best


@dataclass
class Model:
    """A trial's weights: its loss and the epoch it has reached."""

    loss: float = 1.0
    epoch: int = 0


@dataclass(order=True)
class _Event:
    time: float
    worker: int
    trial_id: int = field(compare=False)


def _context(strategy: dict[str, Any], seed: int) -> StudyContext:
    return StudyContext(
        space=SPACE,
        direction="minimize",
        metric="loss",
        seed=seed,
        options={k: v for k, v in strategy.items() if k != "name"},
        fidelity=Fidelity("epoch", 1, T, 3),
        max_trials=10_000,
    )


def simulate(strategy: dict[str, Any], seed: int) -> dict[str, Any]:
    """Runs one strategy with WORKERS workers until BUDGET epochs are trained (or the
    study has nothing left), and returns the true final loss of its best complete trial."""
    context = _context(strategy, seed)
    study = MemoryStudy(registry.build(strategy, None, context), context)
    rng = random.Random(seed * 7919 + 13)
    noise = random.Random(seed * 104729 + 1)
    models: dict[int, Model] = {}
    snapshots: dict[tuple[int, float], Model] = {}
    events: list[_Event] = []
    idle: list[int] = list(range(WORKERS))
    trained = 0
    copies = 0
    now = 0.0
    max_trials = strategy.get("max_trials")

    def start(worker: int) -> bool:
        nonlocal copies
        if trained >= BUDGET:
            return False
        can_create = max_trials is None or study.history.count() < max_trials
        try:
            asked = study.ask(can_create=can_create)
        except SearchExhausted:
            asked = None
        if asked is None:
            return False
        record, resumed = asked
        source = record.extra.get("checkpoint_from") if resumed else None
        if source:
            models[record.id] = copy.copy(snapshots[(source["trial_id"], float(source["step"]))])
            copies += 1
        models.setdefault(record.id, Model())
        heapq.heappush(events, _Event(now + rng.uniform(0.8, 1.2), worker, record.id))
        return True

    for worker in list(idle):
        if start(worker):
            idle.remove(worker)
    while events and trained < BUDGET:
        event = heapq.heappop(events)
        now = event.time
        record = study.history.get(event.trial_id)
        model = models[record.id]
        model.epoch += 1
        model.loss *= factor(dict(record.params), model.epoch)
        trained += 1
        reported = model.loss * math.exp(NOISE * noise.gauss(0, 1))
        decision = study.report(record.id, {float(model.epoch): reported})
        budget = record.budget if record.budget is not None else T
        going = decision.action == Action.CONTINUE
        if decision.action == Action.PAUSE:
            snapshots[(record.id, float(model.epoch))] = copy.copy(model)
        elif going and model.epoch >= budget:
            study.tell(record.id, reported)
            going = False
        if going:
            heapq.heappush(events, _Event(now + rng.uniform(0.8, 1.2), event.worker, record.id))
            continue
        idle.append(event.worker)
        for worker in list(idle):
            if start(worker):
                idle.remove(worker)
    complete = [
        r
        for r in study.history.trials()
        if r.state == TrialState.COMPLETED and models[r.id].epoch >= T and r.value is not None
    ]
    if not complete:
        return {"final": math.nan, "trained": trained, "copies": copies, "trials": 0}
    chosen = min(complete, key=lambda r: r.value or math.inf)
    return {
        "final": models[chosen.id].loss,
        "trained": trained,
        "copies": copies,
        "trials": study.history.count(),
    }


STRATEGIES: dict[str, dict[str, Any]] = {
    "pbt": {
        "name": "pbt",
        "population_size": POPULATION,
        "perturbation_interval": INTERVAL,
        "resample_probability": 0.25,
    },
    "pb2": {"name": "pb2", "population_size": POPULATION, "perturbation_interval": INTERVAL},
    "asha": {"name": "asha", "mode": "stop", "sampler": "random"},
    "random": {"name": "random", "max_trials": WORKERS},
}


def _run(args: tuple[str, int]) -> dict[str, Any]:
    name, seed = args
    strategy = {**STRATEGIES[name], "seed": seed}
    started = time.perf_counter()
    # Random search: WORKERS configs trained to T, the same compute.
    result = simulate_random(seed) if name == "random" else simulate(strategy, seed)
    result.update(strategy=name, seed=seed, seconds=time.perf_counter() - started)
    return result


def simulate_random(seed: int) -> dict[str, Any]:
    strategy = {"name": "random", "seed": seed}
    context = _context(strategy, seed)
    study = MemoryStudy(registry.build(strategy, None, context), context)
    noise = random.Random(seed * 104729 + 1)
    best: tuple[float, float] = (math.inf, math.nan)
    for _ in range(WORKERS):
        record, _ = study.ask()
        final = fixed_final(dict(record.params))
        reported = final * math.exp(NOISE * noise.gauss(0, 1))
        study.tell(record.id, reported)
        best = min(best, (reported, final))
    return {"final": best[1], "trained": WORKERS * T, "copies": 0, "trials": WORKERS}


def sim_part(seeds: int) -> dict[str, Any]:
    from multiprocessing import Pool

    jobs = [(name, seed) for seed in range(seeds) for name in STRATEGIES]
    with Pool(2) as pool:
        rows = pool.map(_run, jobs)
    oracle, params = best_fixed()
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["strategy"], []).append(row)
    lines = [
        f"Moving optimum, {seeds} seeds, {WORKERS} workers, {BUDGET} epochs each "
        f"(T = {T}); true final loss of the chosen trial (lower is better)",
        "",
        "| strategy | median final loss | mean | best | worst | epochs trained | copies | s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in by.items():
        finals = [r["final"] for r in runs]
        lines.append(
            f"| {name} | {statistics.median(finals):.4g} | {statistics.fmean(finals):.4g} | "
            f"{min(finals):.4g} | {max(finals):.4g} | "
            f"{statistics.median([r['trained'] for r in runs]):.0f} | "
            f"{statistics.median([r['copies'] for r in runs]):.0f} | "
            f"{statistics.median([r['seconds'] for r in runs]):.2f} |"
        )
    lines.append(
        f"| best fixed config (oracle: lr {params['lr']:.3g}, wd {params['wd']:.2f}) | "
        f"{oracle:.4g} | | | | {4000 * T} | | |"
    )
    wins = {
        name: sum(
            1
            for seed in range(seeds)
            if by[name][seed]["final"] < min(by["asha"][seed]["final"], by["random"][seed]["final"])
        )
        for name in ("pbt", "pb2")
    }
    pb2_vs_pbt = sum(
        1 for seed in range(seeds) if by["pb2"][seed]["final"] <= by["pbt"][seed]["final"]
    )
    lines += [
        "",
        f"pbt beats both fixed-config strategies (asha, random) in {wins['pbt']} of {seeds} "
        f"seeds; pb2 in {wins['pb2']} of {seeds}; pb2 <= pbt in {pb2_vs_pbt} of {seeds}.",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return {"rows": rows, "oracle": oracle, "table": text}


# Part torch -------------------------------------------------------------------------------

TORCH_SCRIPT = Path(__file__).resolve().parent / "pbt_torch_train.py"


@contextmanager
def _server(data_dir: Path) -> Iterator[str]:
    import socket

    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app
    from app.settings import Settings

    database_url = f"sqlite:///{data_dir / 'tunelab.db'}"
    upgrade(database_url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = Settings(
        data_dir=data_dir,
        database_url=database_url,
        api_url=url,
        port=port,
        broker_url="",
        run_trials=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def _torch_study(name: str, strategy: dict[str, Any], max_trials: int) -> dict[str, Any]:
    return {
        "name": name,
        "objective": {"metric": "val_acc", "direction": "maximize"},
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "scale": "log"}},
        "strategy": strategy,
        "fidelity": {"param": "epochs", "min": 1, "max": 16},
        "limits": {"max_trials": max_trials, "max_parallel_trials": 4},
        "execution": {
            "command": [sys.executable, str(TORCH_SCRIPT)],
            "metric_definitions": [
                {"name": "val_acc", "regex": r"epoch (?P<step>\d+) val_acc=(?P<value>\S+)"}
            ],
            "checkpoint": True,
            "stop_grace_s": 30,
        },
    }


def torch_part(seeds: int) -> dict[str, Any]:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("part torch skipped: torch is not installed (pip install tunelab[torch])")
        return {}
    import httpx

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, _server(Path(folder)) as url:
        api = httpx.Client(base_url=f"{url}/api/v1", timeout=30)
        for seed in range(seeds):
            for label, strategy, trials in (
                (
                    "pbt",
                    {
                        "name": "pbt",
                        "seed": seed,
                        "population_size": 4,
                        "perturbation_interval": 4,
                    },
                    4,
                ),
                ("random", {"name": "random", "seed": seed}, 4),
            ):
                started = time.perf_counter()
                study = api.post(
                    "/studies", json=_torch_study(f"{label}-{seed}", strategy, trials)
                ).json()
                while (s := api.get(f"/studies/{study['id']}").json())["state"] == "running":
                    time.sleep(1)
                trials_read = api.get(
                    f"/studies/{study['id']}/trials", params={"limit": 100}
                ).json()["items"]
                copies: list[str] = []
                for trial in trials_read:
                    log = api.get(f"/trials/{trial['id']}/logs").json()["text"]
                    copies += [
                        f"trial {trial['number']}: {line[10:]}"
                        for line in log.splitlines()
                        if line.startswith("[tunelab] copied")
                    ]
                row = {
                    "strategy": label,
                    "seed": seed,
                    "state": s["state"],
                    "best": s["best_value"],
                    "copies": copies,
                    "seconds": time.perf_counter() - started,
                }
                if label == "pbt":
                    best = max(trials_read, key=lambda t: t["value"] or -1)
                    row["schedule"] = api.get(f"/trials/{best['id']}/schedule").json()["schedule"]
                results.append(row)
                print(
                    f"{label} seed {seed}: best val_acc {s['best_value']:.4f} "
                    f"({row['seconds']:.0f} s, {len(copies)} checkpoint copies)",
                    flush=True,
                )
                for line in copies[:6]:
                    print("   ", line, flush=True)
    return {"rows": results}


def cost_part(repeats: int = 7) -> dict[str, Any]:
    from app.engine.schedulers import pb2
    from app.engine.space import FloatParam

    params = [
        FloatParam(name="lr", low=1e-4, high=1.0, scale="log"),
        FloatParam(name="momentum", low=0.0, high=0.99),
    ]
    running = [{"lr": 0.01, "momentum": 0.9}] * 3
    rows = []
    for size in (50, pb2.MAX_ROWS):
        rng = np.random.default_rng(size)
        observations = [
            {
                "params": {"lr": float(10 ** rng.uniform(-4, 0)), "momentum": rng.uniform(0, 0.99)},
                "t": float(i // 4),
                "r_before": float(rng.normal()),
                "y": float(rng.normal()),
            }
            for i in range(size)
        ]
        seconds = []
        for seed in range(repeats):
            started = time.perf_counter()
            pb2.select(
                params, observations, running, time=size / 4 + 1, reward_before=0.0, seed=seed
            )
            seconds.append(time.perf_counter() - started)
        row = {"observations": size, "median_s": statistics.median(seconds), "max_s": max(seconds)}
        print(
            f"pb2 explore, {size} observations: {row['median_s']:.3f} s median, "
            f"{row['max_s']:.3f} s max",
            flush=True,
        )
        rows.append(row)
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="sim,torch")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--torch-seeds", type=int, default=2)
    parser.add_argument("--out", default=".bench-cache/strategies/pbt.json")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {}
    if "sim" in parts:
        out["sim"] = sim_part(args.seeds)
    if "torch" in parts:
        out["torch"] = torch_part(args.torch_seeds)
    if "cost" in parts:
        out["cost"] = cost_part()
    target = Path(args.out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
