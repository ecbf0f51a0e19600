"""`tunelab study ...`, `tunelab trial logs` and `tunelab scale`: the API from a terminal.

These commands talk to a running server over HTTP through `tunelab.client`, so they work
against a remote server as well as a local one (--url, TUNELAB_URL, TUNELAB_TOKEN). A
refused call or an unreachable server ends the command with one line (see `main`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from app.cli import remote
from tunelab.client import Client, Study

WATCH_ROWS = 20


def register(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    remote.add_url_argument(common)

    study = commands.add_parser("study", help="create, list, watch and promote studies")
    actions = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create", parents=[common], help="create a study from a YAML or JSON file"
    )
    create.add_argument("-f", "--file", required=True, type=Path)
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", parents=[common], help="list studies")
    listing.add_argument(
        "--state", default=None, choices=["running", "paused", "stopped", "completed"]
    )
    listing.set_defaults(handler=run_list)

    watch = actions.add_parser("watch", parents=[common], help="a live table of a study's trials")
    watch.add_argument("study_id", type=int)
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    watch.set_defaults(handler=run_watch)

    best = actions.add_parser("best", parents=[common], help="the best trial of a study")
    best.add_argument("study_id", type=int)
    best.add_argument("--json", action="store_true", help="print JSON")
    best.set_defaults(handler=run_best)

    promote = actions.add_parser(
        "promote", parents=[common], help="promote the best trials to a larger world"
    )
    promote.add_argument("study_id", type=int)
    _scale_arguments(promote)
    promote.add_argument("--top-k", type=int, default=3)
    promote.add_argument("--name", default=None)
    promote.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter outright in the new study (data_fraction=1.0)",
    )
    promote.set_defaults(handler=run_promote)

    importance = actions.add_parser("importance", parents=[common], help="parameter importance")
    importance.add_argument("study_id", type=int)
    importance.add_argument("--method", default="fanova", choices=["fanova", "permutation"])
    importance.set_defaults(handler=run_importance)

    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="run a pbt/pb2 member's hyperparameter schedule from scratch as one trial",
    )
    replay.add_argument("study_id", type=int)
    replay.add_argument("--trial", type=int, default=None, help="the member (default: the best)")
    replay.set_defaults(handler=run_replay)

    trial = commands.add_parser("trial", help="trial output")
    trial_actions = trial.add_subparsers(dest="trial_command", metavar="ACTION", required=True)
    logs = trial_actions.add_parser("logs", parents=[common], help="print a trial's console output")
    logs.add_argument("trial_id", type=int)
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the trial ends"
    )
    logs.add_argument("--offset", type=int, default=0, help="start at this byte")
    logs.set_defaults(handler=run_logs)

    scale = commands.add_parser(
        "scale",
        parents=[common],
        help="scale a config to another world size, showing the arithmetic",
    )
    target = scale.add_mutually_exclusive_group(required=True)
    target.add_argument("--trial", type=int, help="a trial whose config to scale")
    target.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="a config value (repeat)"
    )
    scale.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="NAME=ROLE",
        help="learning_rate, per_device_batch_size, global_batch_size or warmup_steps",
    )
    _scale_arguments(scale)
    scale.add_argument("--json", action="store_true", help="print JSON")
    scale.set_defaults(handler=run_scale)


def _scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        type=world,
        default=None,
        metavar="NODESxGPUS",
        help="the world the config was tuned on, e.g. 2x8 (default: the study's tags.world)",
    )
    parser.add_argument(
        "--to",
        dest="target",
        type=world,
        required=True,
        metavar="NODESxGPUS",
        help="the new world, e.g. 4x8",
    )
    parser.add_argument("--rule", default="linear", choices=["linear", "sqrt", "none"])
    parser.add_argument("--per-device-batch", type=int, default=None, help="a new per-device batch")


def world(text: str) -> dict[str, int]:
    """`4x8` (or `4,8`): 4 nodes of 8 GPUs."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        nodes, gpus = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write NODESxGPUS, e.g. 4x8") from None
    return {"nodes": nodes, "gpus_per_node": gpus}


def _value(text: str) -> Any:
    """A command-line value as JSON when it parses (numbers, true), else as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{flag} {item!r}: write NAME=VALUE")
        out[name] = _value(value)
    return out


def _client(args: argparse.Namespace) -> Client:
    return remote.connect(args.url)


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def run_create(args: argparse.Namespace) -> int:
    text = args.file.read_text()
    if args.file.suffix in (".yaml", ".yml"):
        import yaml

        body = yaml.safe_load(text)
    else:
        body = json.loads(text)
    with _client(args) as client:
        study = client.create_study(body)
    print(f"created study {study.id} ({study.name})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    with _client(args) as client:
        found = client.studies(args.state)
    table = Table("id", "name", "state", "trials", "best", "parent")
    for study in found:
        data = study.data
        table.add_row(
            str(study.id),
            study.name,
            study.state,
            f"{data['n_trials']}/{data['limits']['max_trials']}",
            _format(study.best_value),
            _format(data.get("parent_study_id")),
        )
    Console().print(table)
    return 0


def trials_table(study: Study, rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    params = [c for c in (rows[0] if rows else {}) if c.startswith("params_")]
    table = Table(title=f"study {study.id}: {study.name} ({study.state})")
    for column in [
        "#",
        "state",
        *[p.removeprefix("params_") for p in params],
        "value",
        "best so far",
        "s",
    ]:
        table.add_column(column)
    for row in rows[-WATCH_ROWS:]:
        table.add_row(
            str(row["number"]),
            str(row["state"]),
            *[_format(row[p]) for p in params],
            _format(row["value"]),
            _format(row["best_so_far"]),
            _format(row["duration_s"]),
        )
    return table


def run_watch(args: argparse.Namespace) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        with _client(args) as client:
            study = client.study(args.study_id)
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            task = progress.add_task("trials", total=study.data["limits"]["max_trials"])
            with Live(refresh_per_second=4) as live:
                while True:
                    study.refresh()
                    rows = study.rows()
                    counts = study.data["trial_counts"]
                    done = sum(
                        counts.get(s, 0) for s in ("completed", "stopped", "failed", "cancelled")
                    )
                    progress.update(
                        task,
                        completed=done,
                        total=study.data["limits"]["max_trials"],
                        description=f"trials (running {counts.get('running', 0)}, "
                        f"best {_format(study.best_value)})",
                    )
                    live.update(Group(trials_table(study, rows), progress))
                    if study.finished:
                        break
                    time.sleep(args.interval)
    except KeyboardInterrupt:
        return 130
    print(f"study {study.id} {study.state}: {study.data['state_reason']}")
    return 0


def run_best(args: argparse.Namespace) -> int:
    with _client(args) as client:
        study = client.study(args.study_id)
        if len(study.data.get("objectives") or []) > 1:
            return _print_pareto(args, study.pareto())
        best = study.best_trial()
    if best is None:
        print("no completed trial yet", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "trial_id": best.id,
                    "number": best.number,
                    "value": best.data["value"],
                    "params": best.params,
                }
            )
        )
        return 0
    print(f"trial {best.number} (id {best.id}): value {_format(best.value)}")
    for name, value in best.params.items():
        print(f"  {name} = {_format(value)}")
    return 0


def _print_pareto(args: argparse.Namespace, front: dict[str, Any]) -> int:
    """Several objectives: the best trials are the Pareto set, one row each."""
    trials = front["trials"]
    if args.json:
        print(
            json.dumps(
                {
                    "hypervolume": front["hypervolume"],
                    "reference_point": front["reference_point"],
                    "reference_point_source": front["reference_point_source"],
                    "trials": [
                        {
                            "trial_id": t["id"],
                            "number": t["number"],
                            "values": t["values"],
                            "params": t["params"],
                        }
                        for t in trials
                    ],
                }
            )
        )
        return 0
    if not trials:
        print("no feasible completed trial yet", file=sys.stderr)
        return 1
    from rich.console import Console
    from rich.table import Table

    metrics = [f"{o['metric']} ({o['direction'][:3]})" for o in front["objectives"]]
    table = Table("trial", *metrics, "params", title="Pareto set")
    for t in trials:
        params = ", ".join(f"{k}={_format(v)}" for k, v in t["params"].items())
        table.add_row(str(t["number"]), *[_format(v) for v in t["values"] or []], params)
    Console().print(table)
    reference = ", ".join(_format(v) for v in front["reference_point"] or [])
    print(
        f"Pareto set: {len(trials)} trials; hypervolume {_format(front['hypervolume'])} "
        f"against ({reference}), {front['reference_point_source']}"
    )
    return 0


def run_logs(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            if args.follow:
                for text in client.follow_logs(args.trial_id):
                    sys.stdout.write(text)
                    sys.stdout.flush()
            else:
                sys.stdout.write(client.logs(args.trial_id, args.offset)["text"])
    except KeyboardInterrupt:
        return 130
    return 0


def print_scale(result: dict[str, Any]) -> None:
    print(
        f"rule {result['rule']}: world {result['from']['world_size']} -> {result['to']['world_size']}"
    )
    for step in result["steps"]:
        print(f"  {step['what']}: {step['formula']}")
    for change in result["changes"]:
        print(f"  {change['param']}: {_format(change['before'])} -> {_format(change['after'])}")
    for note in result["notes"]:
        print(f"  note: {note}")


def run_scale(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.trial is not None:
            result = client.trial(args.trial).scale(
                args.target, args.source, args.rule, args.per_device_batch
            )
        else:
            if args.source is None:
                print("error: --from is needed with --param", file=sys.stderr)
                return 2
            roles = {name: str(role) for name, role in _pairs(args.role, "--role").items()}
            result = client.scale(
                _pairs(args.param, "--param"),
                args.target,
                args.source,
                args.rule,
                roles=roles,
                per_device_batch=args.per_device_batch,
            )
    if args.json:
        print(json.dumps(result))
    else:
        print_scale(result)
        print(json.dumps(result["params"]))
    return 0


def run_promote(args: argparse.Namespace) -> int:
    with _client(args) as client:
        parent = client.study(args.study_id)
        child = parent.promote(
            args.target,
            top_k=args.top_k,
            rule=args.rule,
            source=args.source,
            name=args.name,
            overrides=_pairs(args.set, "--set"),
            per_device_batch=args.per_device_batch,
        )
    print(
        f"created study {child.id} ({child.name}) with {child.data['trial_counts'].get('queued', 0)} queued trials"
    )
    return 0


def run_importance(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.study(args.study_id).importance(args.method)
    if not result["params"]:
        print(result["note"])
        return 0
    width = max(len(p["param"]) for p in result["params"])
    for item in result["params"]:
        bar = "#" * round(30 * item["importance"])
        print(f"{item['param']:<{width}}  {item['importance']:6.3f}  {bar}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    with _client(args) as client:
        trial = client.study(args.study_id).replay(args.trial)
    replay = trial.data.get("extra", {}).get("replay", {})
    changes = max(0, len(replay.get("schedule", [])) - 1)
    print(
        f"queued trial {trial.number} (id {trial.id}): replays trial "
        f"{replay.get('trial_number')}'s schedule from scratch ({changes} changes)"
    )
    return 0
