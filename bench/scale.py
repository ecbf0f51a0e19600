"""Cost at scale: asks and reports with their scheduler decision at 100 to 100,000 trials,
beside Optuna's RDB storage on the same database server.

For each database (SQLite files, and PostgreSQL on 127.0.0.1:5432) Tunelab runs as
`tunelab serve` in a subprocess, driven over HTTP by one keep-alive client; Optuna drives
`optuna.storages.RDBStorage` (with the cache Optuna wraps it in) in this process, in a
database of its own on the same server. Each strategy gets a study of its own on both
sides, grown to each mark by inserting rows (trials, params, results, rung results and
curves, as the strategies would have left them), then analyzed, then timed:

- ask with random, tpe and gp (gp to 10,000 trials): the ask alone is timed; the trial
  is then completed with its value. Optuna: `study.ask()` and five suggests, with its
  RandomSampler, TPESampler and (with torch installed) GPSampler;
- report + decision with asha, hyperband (stop mode; fidelity 1 to 9 epochs, eta 3) and
  the median rule: one epoch's point per report, each report timed with its decision,
  a new trial asked when one is stopped. Optuna: `trial.report` + `trial.should_prune`
  with SuccessiveHalvingPruner, HyperbandPruner and MedianPruner.

A few untimed calls come first at each mark: the first request after a fill reads the
new rows into the server's history cache (once per process), as Optuna's cache reads
them on its first call. Optuna's calls are sampled until a time budget per cell is spent.

    .venv/bin/python bench/scale.py                  # both databases, to 100,000 trials
    .venv/bin/python bench/scale.py --quick          # SQLite, 100 / 1,000 / 10,000 trials
    .venv/bin/python bench/scale.py --databases postgres --marks 100,10000 --json out.json

Targets: report + decision p99 < 20 ms at 10,000 and 100,000 trials and at most 1.5x its
value at 100; ask p99 < 50 ms for random and tpe at 10,000 trials and >= 3x faster than
Optuna's TPE ask there; gp ask < 500 ms at 10,000.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, MetaData, create_engine, func, insert, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.migrate import upgrade  # noqa: E402
from app.db.types import utcnow  # noqa: E402
from app.metrics.models import MetricPoint  # noqa: E402
from app.studies.models import Study  # noqa: E402
from app.trials.models import Trial  # noqa: E402
from bench.api_latency import cpu_seconds, pct, pg_url, recreate, server_pids  # noqa: E402
from tests.fixtures.services import live_server  # noqa: E402

SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-5, "high": 0.1, "scale": "log"},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99},
    "batch_size": {"type": "int", "low": 16, "high": 256, "step": 16},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}
EPOCHS = 9
FIDELITY = {"param": "epoch", "min": 1, "max": EPOCHS, "reduction_factor": 3}
SAMPLERS = ("random", "tpe", "gp")
SCHEDULERS = ("asha", "hyperband", "median")
GP_LAST_MARK = 10_000
OURS_PG, OPTUNA_PG = "scale_ours", "scale_optuna"


def random_config(rng: random.Random) -> dict[str, Any]:
    return {
        "lr": 10 ** rng.uniform(-5, -1),
        "momentum": rng.uniform(0.5, 0.99),
        "batch_size": rng.randrange(16, 257, 16),
        "optimizer": rng.choice(["adam", "sgd"]),
        "dropout": rng.uniform(0.0, 0.5),
    }


def final_loss(params: dict[str, Any]) -> float:
    return (
        (math.log10(params["lr"]) + 3) ** 2 / 4
        + (params["momentum"] - 0.9) ** 2
        + (params["batch_size"] - 128) ** 2 / 65536
        + (0.0 if params["optimizer"] == "adam" else 0.1)
        + params["dropout"] / 10
    )


def loss_at(params: dict[str, Any], epoch: int) -> float:
    return final_loss(params) + 1.0 / epoch


def curve_of(rng: random.Random, strategy: str) -> tuple[str, int]:
    """(state, epochs run) of a filled trial, as successive halving would leave them."""
    if strategy in SAMPLERS:
        return "completed", EPOCHS
    draw = rng.random()
    if draw < 2 / 3:
        return "stopped", 1
    if draw < 8 / 9:
        return "stopped", 3
    return "completed", EPOCHS


def analyze(engine: Engine, tables: tuple[str, ...]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
        else:
            for table in tables:
                conn.execute(text(f"ANALYZE {table}"))


# Tunelab ------------------------------------------------------------------------------


def ours_fill(engine: Engine, study_id: int, strategy: str, target: int, seed: int) -> None:
    """Inserts trials up to `target`, stamped with history versions as the lifecycle would."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        start, version = conn.execute(
            select(Study.next_number, Study.history_version).where(Study.id == study_id)
        ).one()
        if target <= start:
            return
        now = utcnow()
        rows, curves = [], []
        for number in range(start, target):
            params = random_config(rng)
            state, epochs = curve_of(rng, strategy)
            extra: dict[str, Any] = {}
            rung = -1
            if strategy in ("asha", "hyperband"):
                bracket = 0 if strategy == "asha" else rng.choice([0, 0, 0, 1, 1, 2])
                rungs = {str(r): loss_at(params, 3**r) for r in range(bracket, 2) if 3**r <= epochs}
                extra = {"bracket": bracket, "rungs": rungs} if rungs else {"bracket": bracket}
                rung = max((int(r) for r in rungs), default=-1)
            curves.append((number, params, epochs))
            rows.append(
                {
                    "study_id": study_id,
                    "number": number,
                    "state": state,
                    "params": params,
                    "value": loss_at(params, epochs),
                    "budget": float(EPOCHS) if strategy in SCHEDULERS else None,
                    "rung": rung,
                    "extra": extra,
                    "source": "suggested",
                    "retries": 0,
                    "resumes": 0,
                    "worker": "bench",
                    "last_step": float(epochs),
                    "created_at": now - timedelta(seconds=target - number),
                    "started_at": now - timedelta(seconds=target - number),
                    "finished_at": now,
                    "heartbeat_at": now,
                    "history_version": version + 1 + number - start,
                }
            )
        for chunk in range(0, len(rows), 5000):
            conn.execute(insert(Trial), rows[chunk : chunk + 5000])
        if strategy == "median":
            ids = dict(
                conn.execute(
                    select(Trial.number, Trial.id).where(
                        Trial.study_id == study_id, Trial.number >= start
                    )
                ).all()
            )
            points = [
                {
                    "trial_id": ids[number],
                    "name": "loss",
                    "step": float(epoch),
                    "value": loss_at(params, epoch),
                    "created_at": now,
                }
                for number, params, epochs in curves
                for epoch in range(1, epochs + 1)
            ]
            for chunk in range(0, len(points), 20000):
                conn.execute(insert(MetricPoint), points[chunk : chunk + 20000])
        conn.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(next_number=target, history_version=version + target - start)
        )
    analyze(engine, ("trials", "metric_points"))


def ours_study(http: httpx.Client, strategy: str) -> int:
    body: dict[str, Any] = {
        "name": f"scale {strategy}",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "strategy": {"name": strategy, "seed": 1},
        "limits": {
            "max_trials": 1_000_000,
            "max_parallel_trials": 1_000,
            "heartbeat_timeout_s": 7 * 86400,
        },
    }
    if strategy in ("asha", "hyperband"):
        body["strategy"]["mode"] = "stop"
        body["fidelity"] = FIDELITY
    if strategy == "median":
        body["strategy"] = {"name": "random", "seed": 1}
        body["early_stopping"] = {"rule": "median", "min_trials": 5}
    response = http.post("/studies", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class Timer:
    """Wall time of each timed call, and the server's CPU time over them (from /proc, in
    10 ms ticks: summed over a cell it is a fair mean), which the host's load leaves alone.
    Optuna's CPU time is this process's: both leave out PostgreSQL's own."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.times: list[float] = []
        self.cpu = 0.0

    def call(self, request: Callable[[], httpx.Response], keep: bool) -> httpx.Response:
        cpu, began = cpu_seconds(self.pids), time.perf_counter()
        response = request()
        took, used = time.perf_counter() - began, cpu_seconds(self.pids) - cpu
        if keep:
            self.times.append(took)
            self.cpu += used
        return response


def ours_asks(http: httpx.Client, study_id: int, samples: int, warmup: int, timer: Timer) -> None:
    for i in range(warmup + samples):
        response = timer.call(partial(http.post, f"/studies/{study_id}/trials"), i >= warmup)
        assert response.status_code == 201, response.text
        trial = response.json()
        told = http.post(
            f"/trials/{trial['id']}/complete", json={"value": final_loss(trial["params"])}
        )
        assert told.status_code == 200, told.text


def ours_reports(
    http: httpx.Client, study_id: int, samples: int, warmup: int, timer: Timer
) -> None:
    reports = 0
    while len(timer.times) < samples:
        asked = http.post(f"/studies/{study_id}/trials")
        assert asked.status_code == 201, asked.text
        trial = asked.json()
        for epoch in range(1, EPOCHS + 1):
            point = [{"name": "loss", "step": epoch, "value": loss_at(trial["params"], epoch)}]
            reports += 1
            path = f"/trials/{trial['id']}/metrics"
            response = timer.call(
                partial(http.post, path, json=point),
                reports > warmup and len(timer.times) < samples,
            )
            assert response.status_code == 200, response.text
            if response.json()["decision"] != "continue":
                break
        else:
            told = http.post(f"/trials/{trial['id']}/complete", json={})
            assert told.status_code == 200, told.text


# Optuna -------------------------------------------------------------------------------


def optuna_objects(strategy: str) -> tuple[Any, Any]:
    import optuna

    samplers: dict[str, Callable[[], Any]] = {
        "random": lambda: optuna.samplers.RandomSampler(seed=1),
        "tpe": lambda: optuna.samplers.TPESampler(seed=1),
        "gp": lambda: optuna.samplers.GPSampler(seed=1),
    }
    pruners: dict[str, Callable[[], Any]] = {
        "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=EPOCHS, reduction_factor=3
        ),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5),
    }
    sampler = samplers[strategy]() if strategy in samplers else samplers["random"]()
    pruner = pruners[strategy]() if strategy in pruners else optuna.pruners.NopPruner()
    return sampler, pruner


def optuna_suggest(trial: Any) -> dict[str, Any]:
    return {
        "lr": trial.suggest_float("lr", 1e-5, 0.1, log=True),
        "momentum": trial.suggest_float("momentum", 0.5, 0.99),
        "batch_size": trial.suggest_int("batch_size", 16, 256, step=16),
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "sgd"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def optuna_distributions() -> dict[str, str]:
    import optuna
    from optuna.distributions import distribution_to_json

    return {
        "lr": distribution_to_json(optuna.distributions.FloatDistribution(1e-5, 0.1, log=True)),
        "momentum": distribution_to_json(optuna.distributions.FloatDistribution(0.5, 0.99)),
        "batch_size": distribution_to_json(optuna.distributions.IntDistribution(16, 256, step=16)),
        "optimizer": distribution_to_json(
            optuna.distributions.CategoricalDistribution(["adam", "sgd"])
        ),
        "dropout": distribution_to_json(optuna.distributions.FloatDistribution(0.0, 0.5)),
    }


def optuna_fill(engine: Engine, study_id: int, strategy: str, target: int, seed: int) -> None:
    """Inserts trials up to `target` in Optuna's tables, as its samplers and pruners
    would have left them (params, values, intermediate values, rung results)."""
    rng = random.Random(seed)
    tables = MetaData()
    tables.reflect(engine)
    trials, params_t = tables.tables["trials"], tables.tables["trial_params"]
    values_t = tables.tables["trial_values"]
    steps_t = tables.tables["trial_intermediate_values"]
    attrs_t = tables.tables["trial_system_attributes"]
    distributions = optuna_distributions()
    with engine.begin() as conn:
        start = conn.execute(
            select(func.count()).select_from(trials).where(trials.c.study_id == study_id)
        ).scalar_one()
        if target <= start:
            return
        first_id = (conn.execute(select(func.max(trials.c.trial_id))).scalar() or 0) + 1
        now = utcnow().replace(tzinfo=None)
        rows, params, values, steps, attrs = [], [], [], [], []
        for offset, number in enumerate(range(start, target)):
            trial_id = first_id + offset
            config = random_config(rng)
            state, epochs = curve_of(rng, strategy)
            rows.append(
                {
                    "trial_id": trial_id,
                    "number": number,
                    "study_id": study_id,
                    "state": "COMPLETE" if state == "completed" else "PRUNED",
                    "datetime_start": now,
                    "datetime_complete": now,
                }
            )
            for name, value in config.items():
                internal = float(["adam", "sgd"].index(value)) if name == "optimizer" else value
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": internal,
                        "distribution_json": distributions[name],
                    }
                )
            if state == "completed":
                values.append(
                    {
                        "trial_id": trial_id,
                        "objective": 0,
                        "value": loss_at(config, epochs),
                        "value_type": "FINITE",
                    }
                )
            if strategy in SCHEDULERS:
                for epoch in range(1, epochs + 1):
                    steps.append(
                        {
                            "trial_id": trial_id,
                            "step": epoch,
                            "intermediate_value": loss_at(config, epoch),
                            "intermediate_value_type": "FINITE",
                        }
                    )
                for rung in range(2):
                    if 3**rung <= epochs and strategy == "asha":
                        attrs.append(
                            {
                                "trial_id": trial_id,
                                "key": f"completed_rung_{rung}",
                                "value_json": json.dumps(loss_at(config, 3**rung)),
                            }
                        )
        for table, batch in (
            (trials, rows),
            (params_t, params),
            (values_t, values),
            (steps_t, steps),
            (attrs_t, attrs),
        ):
            for chunk in range(0, len(batch), 20000):
                conn.execute(insert(table), batch[chunk : chunk + 20000])
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                    "(SELECT max(trial_id) FROM trials))"
                )
            )
    analyze(engine, ("trials", "trial_params", "trial_values", "trial_intermediate_values"))


def optuna_asks(study: Any, samples: int, warmup: int, budget_s: float) -> dict[str, float]:
    times: list[float] = []
    spent = cpu = 0.0
    for i in range(warmup + samples):
        began, began_cpu = time.perf_counter(), time.process_time()
        trial = study.ask()
        config = optuna_suggest(trial)
        took = time.perf_counter() - began
        used = time.process_time() - began_cpu
        study.tell(trial, final_loss(config))
        if i >= warmup:
            times.append(took)
            spent += took
            cpu += used
            if spent > budget_s and len(times) >= 5:
                break
    return cell(times, cpu)


def optuna_reports(study: Any, samples: int, warmup: int, budget_s: float) -> dict[str, float]:
    import optuna

    times: list[float] = []
    spent = cpu = 0.0
    reports = 0
    while len(times) < samples and not (spent > budget_s and len(times) >= 5):
        trial = study.ask()
        config = optuna_suggest(trial)
        for epoch in range(1, EPOCHS + 1):
            began, began_cpu = time.perf_counter(), time.process_time()
            trial.report(loss_at(config, epoch), epoch)
            pruned = trial.should_prune()
            took = time.perf_counter() - began
            used = time.process_time() - began_cpu
            reports += 1
            if reports > warmup:
                times.append(took)
                spent += took
                cpu += used
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, loss_at(config, EPOCHS))
    return cell(times, cpu)


# The run ------------------------------------------------------------------------------


def cell(times: list[float], cpu_s: float | None = None) -> dict[str, float]:
    out = {"n": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99)}
    if cpu_s is not None:
        out["server_cpu_ms"] = cpu_s / len(times) * 1000
    return out


def run_database(
    kind: str, marks: list[int], samples: int, budget_s: float, strategies: list[str]
) -> list[dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    if kind == "sqlite":
        ours_url, optuna_url = f"sqlite:///{tmp / 'ours.db'}", f"sqlite:///{tmp / 'optuna.db'}"
    else:
        recreate(OURS_PG)
        recreate(OPTUNA_PG)
        ours_url, optuna_url = pg_url(OURS_PG), pg_url(OPTUNA_PG)
    upgrade(ours_url)
    ours_engine, optuna_engine = create_engine(ours_url), create_engine(optuna_url)
    storage = optuna.storages.RDBStorage(url=optuna_url)
    rows: list[dict[str, Any]] = []
    try:
        with (
            live_server(ours_url, tmp) as base,
            httpx.Client(base_url=f"{base}/api/v1", timeout=600) as http,
        ):
            for strategy in strategies:
                study_id = ours_study(http, strategy)
                sampler, pruner = optuna_objects(strategy)
                theirs: Any = None
                if strategy != "gp" or importlib.util.find_spec("torch") is not None:
                    # (Optuna's GPSampler needs torch.)
                    theirs = optuna.create_study(
                        storage=storage, study_name=strategy, sampler=sampler, pruner=pruner
                    )
                for mark in marks:
                    if strategy == "gp" and mark > GP_LAST_MARK:
                        continue
                    seed = (SAMPLERS + SCHEDULERS).index(strategy) * 1_000_003 + mark
                    began = time.perf_counter()
                    ours_fill(ours_engine, study_id, strategy, mark, seed)
                    fill_s = time.perf_counter() - began
                    op = "ask" if strategy in SAMPLERS else "report + decision"
                    measure_ours = ours_asks if strategy in SAMPLERS else ours_reports
                    timer = Timer(server_pids(base))
                    measure_ours(http, study_id, samples, 3, timer)
                    row: dict[str, Any] = {
                        "database": kind,
                        "operation": op,
                        "strategy": strategy,
                        "trials": mark,
                        "tunelab": cell(timer.times, timer.cpu),
                        "fill_s": round(fill_s, 1),
                    }
                    if theirs is not None:
                        optuna_fill(optuna_engine, theirs._study_id, strategy, mark, seed)
                        # A fresh study object: Optuna's cache reads the inserted rows
                        # once, in the untimed warm-up calls.
                        theirs = optuna.load_study(
                            study_name=strategy, storage=storage, sampler=sampler, pruner=pruner
                        )
                        measure = optuna_asks if strategy in SAMPLERS else optuna_reports
                        row["optuna"] = measure(theirs, samples, 2, budget_s)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        storage.engine.dispose()
        ours_engine.dispose()
        optuna_engine.dispose()
        if kind == "postgres":
            recreate(OURS_PG, drop_only=True)
            recreate(OPTUNA_PG, drop_only=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| database | operation | strategy | trials | Tunelab p50 / p99 | Tunelab server CPU "
        "| Optuna RDB p50 / p99 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours = row["tunelab"]
        theirs = row.get("optuna")
        other = f"{theirs['p50_ms']:.1f} / {theirs['p99_ms']:.1f} ms" if theirs else "n/a"
        if theirs and "server_cpu_ms" in theirs:
            other += f" ({theirs['server_cpu_ms']:.1f} ms CPU)"
        cpu = f"{ours['server_cpu_ms']:.1f} ms" if "server_cpu_ms" in ours else ""
        lines.append(
            f"| {row['database']} | {row['operation']} | {row['strategy']} | {row['trials']:,} "
            f"| {ours['p50_ms']:.1f} / {ours['p99_ms']:.1f} ms | {cpu} | {other} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The targets, one line each: met or not, with the numbers."""
    out = []
    by_key = {(r["database"], r["strategy"], r["trials"]): r for r in rows}
    for (kind, strategy, mark), row in sorted(by_key.items()):
        p99 = row["tunelab"]["p99_ms"]
        if strategy in SCHEDULERS and mark >= 10_000:
            base = by_key.get((kind, strategy, 100))
            ratio = p99 / base["tunelab"]["p99_ms"] if base else float("nan")
            ok = p99 < 20 and (base is None or ratio <= 1.5)
            out.append(
                f"{'met' if ok else 'NOT met'}: {kind} {strategy} report + decision p99 at "
                f"{mark:,}: {p99:.1f} ms (< 20 ms; {ratio:.2f}x its value at 100, <= 1.5x)"
            )
        if strategy in ("random", "tpe") and mark == 10_000:
            line = f"{kind} {strategy} ask p99 at 10,000: {p99:.1f} ms (< 50 ms)"
            ok = p99 < 50
            theirs = row.get("optuna")
            if strategy == "tpe" and theirs:
                ratio = theirs["p99_ms"] / p99
                line += f"; Optuna TPE {theirs['p99_ms']:.1f} ms, {ratio:.1f}x (>= 3x)"
                ok = ok and ratio >= 3
            out.append(f"{'met' if ok else 'NOT met'}: {line}")
        if strategy == "gp" and mark == 10_000:
            out.append(
                f"{'met' if p99 < 500 else 'NOT met'}: {kind} gp ask p99 at 10,000: "
                f"{p99:.1f} ms (< 500 ms)"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SQLite, to 10,000 trials")
    parser.add_argument("--databases", help="sqlite,postgres (default: both; --quick: sqlite)")
    parser.add_argument("--marks", help="study sizes, e.g. 100,1000,10000,100000")
    parser.add_argument("--strategies", help=f"default: {','.join(SAMPLERS + SCHEDULERS)}")
    parser.add_argument("--samples", type=int, help="timed calls per cell (100; --quick 40)")
    parser.add_argument(
        "--optuna-budget", type=float, help="seconds of Optuna calls per cell (30; --quick 10)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    databases = (args.databases or ("sqlite" if args.quick else "sqlite,postgres")).split(",")
    default_marks = "100,1000,10000" if args.quick else "100,1000,10000,100000"
    marks = [int(m) for m in (args.marks or default_marks).split(",")]
    strategies = (args.strategies or ",".join(SAMPLERS + SCHEDULERS)).split(",")
    samples = args.samples or (40 if args.quick else 100)
    budget_s = args.optuna_budget or (10.0 if args.quick else 30.0)
    rows: list[dict[str, Any]] = []
    for kind in databases:
        rows += run_database(kind, marks, samples, budget_s, strategies)
    print(table(rows))
    print()
    print("\n".join(verdicts(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
