"""API latency and metric ingest on PostgreSQL, beside Optuna's RDB storage.

Tunelab runs as `tunelab serve` in a subprocess and is driven over real HTTP (one keep-
alive client); Optuna drives `optuna.storages.RDBStorage` in this process. Both use their
own fresh database on the same PostgreSQL server (tunelab_bench, optuna_bench and, for
ingest, ingest_bench; dropped at the end) and the same loops:

- round trip: ask, report one objective point, tell, timed over 200 trials once the
  study holds about 100, 1,000 and 10,000 trials (the first 100 trials for the first
  mark). Up to each mark the study is filled by copying a real trial's rows (the trial,
  its points and events; Optuna's trial, params, values and intermediate values) in
  SQL, so that 10,000 trials take seconds, not an hour, on both sides;
- ingest: metric points in batches of 100 from 1, 4 and 8 reporter processes, each on
  a trial of its own (Optuna: `trial.report` per point, its only way to store
  intermediate values), against `tunelab serve` and `tunelab serve --workers 2`
  (which needs Redis on 127.0.0.1:6379); each setting runs five times, round robin,
  and its median run is reported.

    .venv/bin/python bench/api_latency.py                # full run (a few minutes)
    .venv/bin/python bench/api_latency.py --quick        # 100 and 1,000 trials only
    .venv/bin/python bench/api_latency.py --ingest-only  # no round trips

Targets: ask p99 < 50 ms at 10,000 trials (random sampler); ingest >= 20,000 points/s;
both at least 3x Optuna's RDB storage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.services import PG_ADMIN_URL, PG_HOST, REDIS_URL, live_server  # noqa: E402

OURS_DB = "tunelab_bench"
OPTUNA_DB = "optuna_bench"
INGEST_DB = "ingest_bench"
BATCH = 100
WINDOW = 200  # round trips timed at each mark
INGEST_CLIENTS = (1, 4, 8)
INGEST_REPEATS = 3  # runs per setting, alternating; the median is reported

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 0.1, "scale": "log"},
    "momentum": {"type": "float", "low": 0.9, "high": 0.999, "scale": "reverse_log"},
    "batch_size": {"type": "int", "low": 16, "high": 256, "step": 16},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@{PG_HOST}:5432/{name}"


def recreate(name: str, drop_only: bool = False) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop_only:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000  # ms


def summarize(windows: dict[int, tuple[list[float], list[float]]]) -> list[dict[str, Any]]:
    return [
        {
            "trials": mark,
            "samples": len(trips),
            "trip_p50_ms": pct(trips, 50),
            "trip_p99_ms": pct(trips, 99),
            "ask_p50_ms": pct(asks, 50),
            "ask_p99_ms": pct(asks, 99),
        }
        for mark, (asks, trips) in windows.items()
    ]


def window(mark: int) -> tuple[int, int]:
    """The trial numbers timed for a mark: [start, stop)."""
    if mark <= WINDOW:
        return 0, mark
    return mark - WINDOW // 2, mark + WINDOW // 2


def fill_by_copy(
    url: str,
    trials: str,
    id_col: str,
    study_col: str,
    study_id: int,
    template_id: int,
    start: int,
    stop: int,
    children: list[str],
) -> None:
    """Copies trial `template_id` (and its rows in `children`, by their trial_id column)
    into trials numbered start..stop-1 of the study, in three SQL statements."""
    if stop <= start:
        return
    engine = create_engine(url)
    inspector = inspect(engine)

    def columns(table: str, skip: set[str]) -> list[str]:
        return [c["name"] for c in inspector.get_columns(table) if c["name"] not in skip]

    with engine.begin() as conn:
        copied = columns(trials, {id_col, "number"})
        conn.execute(
            text(
                f"INSERT INTO {trials} (number, {', '.join(copied)}) "
                f"SELECT g, {', '.join('t.' + c for c in copied)} FROM {trials} t, "
                f"generate_series(:start, :stop - 1) g WHERE t.{id_col} = :template"
            ),
            {"start": start, "stop": stop, "template": template_id},
        )
        for child in children:
            pk = inspector.get_pk_constraint(child)["constrained_columns"]
            rest = columns(child, {*pk, "trial_id"})
            conn.execute(
                text(
                    f"INSERT INTO {child} (trial_id, {', '.join(rest)}) "
                    f"SELECT n.{id_col}, {', '.join('c.' + c for c in rest)} "
                    f"FROM {trials} n JOIN {child} c ON c.trial_id = :template "
                    f"WHERE n.{study_col} = :study AND n.number >= :start AND n.number < :stop "
                    f"ORDER BY n.number"
                ),
                {"template": template_id, "study": study_id, "start": start, "stop": stop},
            )
    # Tables that grew by thousands of rows at once get fresh planner statistics, as
    # autovacuum gives a database that grew over time; else the timed window would race
    # autovacuum's own ANALYZE. Both sides get the same.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in (trials, *children):
            conn.execute(text(f"ANALYZE {table}"))
    engine.dispose()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


# Tunelab ------------------------------------------------------------------------------


def ours_round_trips(base: str, marks: list[int]) -> dict[int, tuple[list[float], list[float]]]:
    results: dict[int, tuple[list[float], list[float]]] = {}
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
        study = http.post(
            "/studies",
            json={
                "name": "latency",
                "objective": {"metric": "loss", "direction": "minimize"},
                "space": SPACE,
                "strategy": {"name": "random", "seed": 1},
                "limits": {"max_trials": marks[-1] * 2, "max_parallel_trials": 1},
            },
        ).json()
        done = 0
        template: int | None = None
        for mark in marks:
            first, stop = window(mark)
            if template is not None and first > done:
                fill_by_copy(
                    pg_url(OURS_DB),
                    "trials",
                    "id",
                    "study_id",
                    study["id"],
                    template,
                    done,
                    first,
                    ["metric_points", "events"],
                )
                with create_engine(pg_url(OURS_DB)).begin() as conn:
                    conn.execute(
                        text("UPDATE studies SET next_number = :n WHERE id = :id"),
                        {"n": first, "id": study["id"]},
                    )
                done = first
            asks: list[float] = []
            trips: list[float] = []
            for number in range(first, stop):
                value = 1.0 / (number + 1)
                began = time.perf_counter()
                response, ask_s = timed(lambda: http.post(f"/studies/{study['id']}/trials"))
                assert response.status_code == 201, response.text
                trial = response.json()
                assert trial["number"] == number, (trial["number"], number)
                reported = http.post(
                    f"/trials/{trial['id']}/metrics",
                    json=[{"name": "loss", "step": 1, "value": value}],
                )
                assert reported.status_code == 200, reported.text
                told = http.post(f"/trials/{trial['id']}/complete", json={"value": value})
                assert told.status_code == 200, told.text
                trips.append(time.perf_counter() - began)
                asks.append(ask_s)
                template = trial["id"]
            done = stop
            results[mark] = (asks, trips)
    return results


# Ingest -------------------------------------------------------------------------------
# Reporters run on the GPU nodes in a deployment, not on the API host. Here they share
# its two cores, so each is a process of its own (no shared GIL) with a lean HTTP client
# (one keep-alive connection, bodies encoded before the start line): what a client
# costs is CPU the server and PostgreSQL do not get. The bench also reports an httpx
# client's throughput and every side's CPU per batch, read from /proc.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes, from /proc."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def pids_where(match: Callable[[str], bool]) -> list[int]:
    """Processes whose command line (arguments joined by spaces) passes `match`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if match((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()):
                    pids.append(int(entry.name))
    return pids


def wait_until_idle(pids: list[int], timeout_s: float = 60.0) -> None:
    """Waits out a fresh server's start-up work (it imports the figure libraries in the
    background) until its processes use under 5 % of a core."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(0.5)
        if cpu_seconds(pids) - before < 0.025:
            return


def server_pids(base: str) -> list[int]:
    """The `tunelab serve` process at this URL and, with --workers, its worker processes."""
    port = base.rsplit(":", 1)[1]
    pids = pids_where(lambda line: f"serve --port {port} " in line)
    for pid in list(pids):
        with contextlib.suppress(OSError):
            pids += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    return pids


def batch_body(first_step: int) -> list[dict[str, Any]]:
    """100 points: two metrics over 50 steps."""
    return [
        {"name": name, "step": step, "value": step * 0.001}
        for step in range(first_step, first_step + BATCH // 2)
        for name in ("loss", "acc")
    ]


def ingest_client(
    base: str, trial_id: int, batches: int, client: str, start_line: Any, cpu: Any
) -> None:
    """One reporter process: `batches` batches of 100 points on one trial."""
    path = f"/api/v1/trials/{trial_id}/metrics"
    if client == "httpx":
        began = time.process_time()
        with httpx.Client(base_url=base, timeout=60) as session:
            start_line.wait()
            for number in range(batches):
                response = session.post(path, json=batch_body(number * BATCH // 2))
                assert response.status_code == 200, response.text
    else:
        bodies = [json.dumps(batch_body(n * BATCH // 2)).encode() for n in range(batches)]
        host, port = base.removeprefix("http://").split(":")
        connection = HTTPConnection(host, int(port), timeout=60)
        headers = {"Content-Type": "application/json"}
        began = time.process_time()
        start_line.wait()
        for body in bodies:
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            content = answer.read()
            assert answer.status == 200, content
        connection.close()
    cpu.put(time.process_time() - began)


def median_runs(settings: Mapping[str, Callable[[], dict[str, float]]]) -> dict[str, Any]:
    """Runs every setting INGEST_REPEATS times, round robin, so that a noisy moment hits
    them all alike; keeps each setting's run of median throughput."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    for _ in range(INGEST_REPEATS):
        for name, measure in settings.items():
            runs[name].append(measure())
    return {
        name: sorted(found, key=lambda r: r["points_per_s"])[len(found) // 2]
        for name, found in runs.items()
    }


def ours_ingest(base: str, points: int, clients: int, client: str = "raw") -> dict[str, float]:
    """Points per second with `clients` reporter processes, each on its own trial, in
    batches of 100; and the CPU per batch of the server, PostgreSQL and the clients."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
        study = http.post(
            "/studies",
            json={
                "name": f"ingest-{clients}-{client}",
                "objective": {"metric": "loss", "direction": "minimize"},
                "space": SPACE,
                "limits": {"max_trials": clients, "max_parallel_trials": clients},
            },
        ).json()
        trial_ids = [
            http.post(f"/studies/{study['id']}/trials").json()["id"] for _ in range(clients)
        ]
    batches = points // clients // BATCH
    spawn = multiprocessing.get_context("spawn")
    start_line, cpu = spawn.Barrier(clients + 1), spawn.Queue()
    reporters = [
        spawn.Process(target=ingest_client, args=(base, t, batches, client, start_line, cpu))
        for t in trial_ids
    ]
    for reporter in reporters:
        reporter.start()
    server = server_pids(base)
    database = pids_where(lambda line: line.startswith("postgres"))
    wait_until_idle(server)
    server_before, database_before = cpu_seconds(server), cpu_seconds(database)
    start_line.wait()
    start = time.perf_counter()
    for reporter in reporters:
        reporter.join()
    elapsed = time.perf_counter() - start
    sent = clients * batches
    return {
        "points_per_s": sent * BATCH / elapsed,
        "server_ms": (cpu_seconds(server) - server_before) / sent * 1000,
        "postgres_ms": (cpu_seconds(database) - database_before) / sent * 1000,
        "client_ms": sum(cpu.get() for _ in reporters) / sent * 1000,
    }


# Optuna -------------------------------------------------------------------------------


def optuna_storage(database: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.RDBStorage(url=pg_url(database))


def optuna_suggest(trial: Any) -> None:
    trial.suggest_float("lr", 1e-5, 0.1, log=True)
    trial.suggest_float("momentum", 0.9, 0.999)
    trial.suggest_int("batch_size", 16, 256, step=16)
    trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.suggest_float("dropout", 0.0, 0.5)


def optuna_round_trips(
    storage: Any, marks: list[int]
) -> dict[int, tuple[list[float], list[float]]]:
    import optuna

    study = optuna.create_study(
        storage=storage, study_name="latency", sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study_id = storage.get_study_id_from_name("latency")
    results: dict[int, tuple[list[float], list[float]]] = {}
    done = 0
    template: int | None = None
    for mark in marks:
        first, stop = window(mark)
        if template is not None and first > done:
            fill_by_copy(
                pg_url(OPTUNA_DB),
                "trials",
                "trial_id",
                "study_id",
                study_id,
                template,
                done,
                first,
                ["trial_params", "trial_values", "trial_intermediate_values"],
            )
            done = first
        asks: list[float] = []
        trips: list[float] = []
        for number in range(first, stop):
            value = 1.0 / (number + 1)
            began = time.perf_counter()
            # An ask hands out a trial with its config: Optuna's ask plus its suggest calls.
            trial = study.ask()
            optuna_suggest(trial)
            asks.append(time.perf_counter() - began)
            trial.report(value, 1)
            study.tell(trial, value)
            trips.append(time.perf_counter() - began)
            assert trial.number == number, (trial.number, number)
            template = trial._trial_id
        done = stop
        results[mark] = (asks, trips)
    return results


def optuna_ingest_client(
    study_name: str, trial_id: int, points: int, start_line: Any, cpu: Any
) -> None:
    """One reporter process on one trial: `trial.report` per point."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=optuna_storage(INGEST_DB))
    trial = optuna.trial.Trial(study, trial_id)
    began = time.process_time()
    start_line.wait()
    for step in range(points):
        trial.report(step * 0.001, step)
    cpu.put(time.process_time() - began)


def optuna_ingest(storage: Any, points: int, clients: int) -> dict[str, float]:
    """Points per second with `clients` reporter processes, as `ours_ingest` measures."""
    import optuna

    study = optuna.create_study(storage=storage, study_name=f"ingest-{clients}")
    trial_ids = [study.ask()._trial_id for _ in range(clients)]
    per_client = points // clients
    spawn = multiprocessing.get_context("spawn")
    start_line, cpu = spawn.Barrier(clients + 1), spawn.Queue()
    reporters = [
        spawn.Process(
            target=optuna_ingest_client,
            args=(study.study_name, t, per_client, start_line, cpu),
        )
        for t in trial_ids
    ]
    for reporter in reporters:
        reporter.start()
    database = pids_where(lambda line: line.startswith("postgres"))
    database_before = cpu_seconds(database)
    start_line.wait()
    start = time.perf_counter()
    for reporter in reporters:
        reporter.join()
    elapsed = time.perf_counter() - start
    sent = clients * per_client / BATCH  # per 100 points, as ours is counted
    return {
        "points_per_s": clients * per_client / elapsed,
        "postgres_ms": (cpu_seconds(database) - database_before) / sent * 1000,
        "client_ms": sum(cpu.get() for _ in reporters) / sent * 1000,
    }


# Main ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    marks = [] if args.ingest_only else [100, 1000] if args.quick else [100, 1000, 10000]
    ingest_points = 10_000 if args.quick else 40_000
    optuna_points = 500 if args.quick else 2_000
    results: dict[str, Any] = {"marks": marks}
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            if marks:
                recreate(OURS_DB)
                with live_server(pg_url(OURS_DB), Path(data_dir)) as base:
                    print("tunelab: round trips ...", flush=True)
                    results["ours"] = summarize(ours_round_trips(base, marks))
                    print(json.dumps(results["ours"]), flush=True)
            # Ingest starts from an empty database of its own, on each side and for each
            # server: the round trips' bulk copies (and the checkpoints they cause) stay out.
            for workers, key in ((1, "ours_ingest"), (2, "ours_ingest_workers")):
                recreate(INGEST_DB)
                # Two API processes (`tunelab serve --workers 2`) need Redis.
                extra = {"env": {"TUNELAB_REDIS_URL": REDIS_URL}} if workers > 1 else {}
                with live_server(
                    pg_url(INGEST_DB),
                    Path(data_dir),
                    extra_args=["--workers", str(workers)],
                    **extra,
                ) as base:
                    print(f"tunelab, {workers} process(es): ingest ...", flush=True)
                    settings = {
                        str(n): partial(ours_ingest, base, ingest_points, n) for n in INGEST_CLIENTS
                    }
                    if workers == 1:
                        settings["4 httpx"] = partial(ours_ingest, base, ingest_points, 4, "httpx")
                    results[key] = median_runs(settings)
                    print(json.dumps(results[key]), flush=True)
        if marks:
            recreate(OPTUNA_DB)
            storage = optuna_storage(OPTUNA_DB)
            print("optuna: round trips ...", flush=True)
            results["optuna"] = summarize(optuna_round_trips(storage, marks))
            print(json.dumps(results["optuna"]), flush=True)
            storage.engine.dispose()
        recreate(INGEST_DB)
        storage = optuna_storage(INGEST_DB)
        print(f"optuna: ingest of {optuna_points} points ...", flush=True)
        results["optuna_ingest"] = {
            str(n): optuna_ingest(storage, optuna_points, n) for n in INGEST_CLIENTS
        }
        storage.engine.dispose()
    finally:
        for name in (OURS_DB, OPTUNA_DB, INGEST_DB):
            recreate(name, drop_only=True)
    return results


def latency_table(ours_rows: list[dict[str, Any]], optuna_rows: list[dict[str, Any]]) -> str:
    lines = [
        "| trials in the study | system | round trip p50 | round trip p99 | ask p50 | ask p99 |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for ours, theirs in zip(ours_rows, optuna_rows, strict=True):
        for name, row in (("Tunelab", ours), ("Optuna RDB", theirs)):
            lines.append(
                f"| {row['trials']:,} | {name} | {row['trip_p50_ms']:.1f} ms "
                f"| {row['trip_p99_ms']:.1f} ms | {row['ask_p50_ms']:.1f} ms "
                f"| {row['ask_p99_ms']:.1f} ms |"
            )
    ours, theirs = ours_rows[-1], optuna_rows[-1]
    lines += [
        "",
        f"At {ours['trials']:,} trials: ask p99 {ours['ask_p99_ms']:.1f} ms "
        f"(Optuna {theirs['ask_p99_ms']:.1f} ms, "
        f"{theirs['ask_p99_ms'] / ours['ask_p99_ms']:.1f}x); "
        f"round trip p50 {ours['trip_p50_ms']:.1f} ms "
        f"(Optuna {theirs['trip_p50_ms']:.1f} ms, "
        f"{theirs['trip_p50_ms'] / ours['trip_p50_ms']:.1f}x).",
    ]
    return "\n".join(lines)


def ingest_table(
    ours_runs: dict[str, Any], workers_runs: dict[str, Any], optuna_runs: dict[str, Any]
) -> str:
    """Rows by reporters; ratios against Optuna with as many reporters."""
    lines = [
        "| ingest, batches of 100 | Tunelab | Optuna RDB | ratio "
        "| Tunelab CPU per batch: server / PostgreSQL / client |",
        "|---|---:|---:|---:|---|",
    ]
    rows = [(setting, "", ours) for setting, ours in ours_runs.items()]
    rows += [(setting, ", `--workers 2`", ours) for setting, ours in workers_runs.items()]
    for setting, server, ours in rows:
        clients, _, client = setting.partition(" ")
        label = f"{clients} client{'' if clients == '1' else 's'}{server}"
        compared = "| | "
        if client:
            label += f", {client}"
        elif clients in optuna_runs:
            theirs = optuna_runs[clients]["points_per_s"]
            compared = f"| {theirs:,.0f} points/s | {ours['points_per_s'] / theirs:.0f}x "
        lines.append(
            f"| {label} | {ours['points_per_s']:,.0f} points/s {compared}"
            f"| {ours['server_ms']:.2f} / {ours['postgres_ms']:.2f} / "
            f"{ours['client_ms']:.2f} ms |"
        )
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    tables = []
    if results["marks"]:
        tables.append(latency_table(results["ours"], results["optuna"]))
    tables.append(
        ingest_table(
            results["ours_ingest"], results["ours_ingest_workers"], results["optuna_ingest"]
        )
    )
    return "\n\n".join(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 trials only")
    parser.add_argument("--ingest-only", action="store_true", help="skip the round trips")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    results = run(args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
