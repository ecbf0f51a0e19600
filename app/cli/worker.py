"""`tunelab worker`: a Celery worker whose slots each run one trial at a time."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from app.cli import remote


def register(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run trials from the broker's queue")
    worker.add_argument("--broker", default=None, help="redis:// URL (default: TUNELAB_BROKER_URL)")
    worker.add_argument(
        "--gpus",
        default=None,
        help="GPU indices to use, e.g. 0,1,2,3 (default: every GPU nvidia-smi lists)",
    )
    worker.add_argument(
        "--slots",
        type=int,
        default=None,
        help="trials at once; on a machine without GPUs (default 1), or at most this many GPU slots",
    )
    worker.add_argument(
        "--gpus-per-trial", type=int, default=1, help="GPUs each slot owns (default 1)"
    )
    worker.add_argument(
        "--queues",
        default=None,
        help="comma-separated queues to take trials from (default: tunelab); match execution.queue",
    )
    remote.add_url_argument(
        worker,
        help="the API's URL, if not the one the server advertises (TUNELAB_API_URL)",
        api_url_alias=True,
    )
    worker.add_argument("--name", default=None, help="this worker's name (default: the host name)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(handler=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    broker = args.broker or os.environ.get("TUNELAB_BROKER_URL")
    if not broker:
        print(
            "tunelab worker: give --broker redis://... or set TUNELAB_BROKER_URL", file=sys.stderr
        )
        return 2
    os.environ["TUNELAB_BROKER_URL"] = broker
    if args.url:
        os.environ["TUNELAB_API_URL"] = args.url

    from worker import celery_app
    from worker.slots import detect_gpus, make_slots

    if args.gpus is not None:
        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
    elif args.slots is None:
        gpus = detect_gpus()
    else:
        gpus = []
    try:
        slots = make_slots(args.name, gpus, args.slots, args.gpus_per_trial)
    except ValueError as exc:
        print(f"tunelab worker: {exc}", file=sys.stderr)
        return 2
    celery_app.app.conf.broker_url = broker
    # One line per request at INFO would bury the trial outcomes the worker logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    celery_app.configure(slots)
    for slot in slots:
        shown = f"GPUs {slot.cuda_visible_devices}" if slot.gpus else "CPU"
        print(f"slot {slot.name}: {shown}", flush=True)
    queues = args.queues or celery_app.DEFAULT_QUEUE
    hostname = f"tunelab-{slots[0].name.rsplit(':', 1)[0]}-{os.getpid()}@%h"
    celery_app.app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={len(slots)}",
            f"--queues={queues}",
            f"--loglevel={args.loglevel}",
            f"--hostname={hostname}",
            # Slots need no chatter between workers; starting fast matters more.
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0
