"""The Celery app. The API only sends `tunelab.run_trial(study_id, ticket, api_url)` by
name; workers run it. Start a worker with `tunelab worker` (it sets the slots up)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down

from app.core.redis_clients import fail_fast
from app.executor.liveness import Beacon
from worker import tickets
from worker.api import ApiClient
from worker.delivery import deliver_leftovers
from worker.runner import RunnerConfig, Slot, run_next
from worker.spool import default_spool_dir

log = logging.getLogger("tunelab.worker")

DEFAULT_QUEUE = "tunelab"
TASK_NAME = "tunelab.run_trial"


def make_celery(broker_url: str | None = None) -> Celery:
    app = Celery("tunelab", broker=broker_url or os.environ.get("TUNELAB_BROKER_URL") or None)
    app.conf.update(
        # kombu's Redis transport, made to survive a Redis restart (worker/broker.py).
        broker_transport="worker.broker:Transport",
        task_default_queue=DEFAULT_QUEUE,
        # A task killed mid-way is delivered again; it only asks for a trial, so a second
        # delivery is harmless. Trials of a killed worker are recovered
        # within seconds: its slots' liveness keys expire (app/executor/liveness.py).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One task per free slot: a worker must not hoard tickets another worker could run.
        worker_prefetch_multiplier=1,
        # Trials last hours; an unacknowledged task must not be re-sent while it runs.
        # polling_interval: how soon a worker whose slots were all busy looks for the next
        # task once one frees up (kombu's default, 1 s, would idle each slot ~0.5 s).
        broker_transport_options={"visibility_timeout": 12 * 3600, "polling_interval": 0.02},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    return app


app = make_celery()

# Filled by `configure` (tunelab worker) before the worker starts; each task takes one.
_slots: queue.Queue[Slot] = queue.Queue()
_shutdown = threading.Event()
# Studies as read once: the parts a runner uses never change after creation.
_studies: dict[int, dict[str, Any]] = {}
# One HTTP client per (slot, API): its connection stays open from trial to trial, and a
# new client costs more than a request (httpx builds an SSL context for each).
_clients: dict[tuple[str, str], ApiClient] = {}
# Marks this worker's slots alive in Redis while it runs (app/executor/liveness.py).
_beacon: list[Beacon] = []


def configure(slots: list[Slot]) -> None:
    while not _slots.empty():
        _slots.get_nowait()
    for slot in slots:
        _slots.put(slot)


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    return fail_fast(url)


def _take_ticket(broker: str, study_id: int, ticket: str) -> None:
    """Removes a started task's ticket; never raises. While Redis is away (a restart) the
    trial the API has just handed out must still run, and the ticket must still go: left
    behind it would count as a queued task for its TTL and hold one of the study's slots,
    so it is removed from a background thread once Redis answers again."""
    try:
        tickets.take(_redis(broker), study_id, ticket)
    except Exception:
        log.warning("study %s: Redis did not answer; the task's ticket is removed later", study_id)
        threading.Thread(
            target=_take_ticket_later, args=(broker, study_id, ticket), daemon=True
        ).start()


def _take_ticket_later(broker: str, study_id: int, ticket: str, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + tickets.TICKET_TTL_S  # by then it no longer counts anyway
    while time.monotonic() < deadline and not _shutdown.wait(every_s):
        try:
            tickets.take(_redis(broker), study_id, ticket)
            return
        except Exception:
            continue


@worker_init.connect
def _default_slots(sender: Any = None, **_kwargs: Any) -> None:
    # Started as `celery -A worker.celery_app worker`: one CPU slot per pool thread/process.
    if _slots.empty():
        from worker.slots import make_slots

        configure(make_slots(None, [], int(getattr(sender, "concurrency", 1) or 1)))


@worker_ready.connect
def _start_beacon(**_kwargs: Any) -> None:
    # The API's sweeper recovers a slot's trial seconds after the key stops being renewed.
    slots = [slot.name for slot in list(_slots.queue)]
    if slots and app.conf.broker_url and not _beacon:
        _beacon.append(Beacon(app.conf.broker_url, slots).start())


@worker_ready.connect
def _deliver_leftovers(**_kwargs: Any) -> None:
    # Reports an earlier worker process on this host spooled and could not deliver (it
    # was stopped or killed while the API was away) are sent by this one.
    threading.Thread(
        target=deliver_leftovers,
        args=(default_spool_dir(), _shutdown),
        daemon=True,
        name="spool-leftovers",
    ).start()


@worker_shutdown.connect
def _stop_beacon(**_kwargs: Any) -> None:
    # After the runners ended their trials (and told the API): what is left is recovered.
    while _beacon:
        _beacon.pop().stop()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs: Any) -> None:
    # Running trials end (SIGTERM, then SIGKILL) and are failed or retried by the API.
    _shutdown.set()


@app.task(name=TASK_NAME, ignore_result=True)
def run_trial(study_id: int, ticket: str, api_url: str) -> str:
    slot = _slots.get()
    broker = app.conf.broker_url
    try:
        api = os.environ.get("TUNELAB_API_URL") or api_url
        # Only this task uses its slot's client: a slot runs one task at a time.
        client = _clients.get((slot.name, api))
        if client is None:
            client = _clients[(slot.name, api)] = ApiClient(api)
        study = _studies.get(study_id) or client.get_study(study_id)
        _studies[study_id] = study
        outcome = run_next(
            client,
            study_id,
            slot,
            RunnerConfig(api_url=api),
            stop=_shutdown,
            on_asked=lambda: _take_ticket(broker, study_id, ticket),
            study=study,
        )
        if outcome is None:
            return "nothing to run"
        log.info(
            "trial %s on %s: %s (%s)", outcome.trial_id, slot.name, outcome.state, outcome.reason
        )
        return outcome.state
    finally:
        _slots.put(slot)
