"""With a broker: keeps each running study's trial tasks queued for Celery workers."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from app.core.redis_clients import TIMEOUT_S, fail_fast
from app.db.session import Database
from app.executor.demand import Demand, DemandLoop, log
from app.settings import Settings
from worker import tickets
from worker.celery_app import DEFAULT_QUEUE, TASK_NAME, make_celery


class CeleryDispatcher(DemandLoop):
    def __init__(self, settings: Settings, database: Database) -> None:
        super().__init__(database)
        self.api_url = settings.api_url
        self.celery = make_celery(settings.broker_url)
        # kombu's Redis transport waits forever on a broker that accepts but does not answer
        # (restarting, loading, saving) and Celery re-sends a failed publish several times.
        # This loop sweeps again in seconds anyway: a send fails fast and the next sweep
        # sends it. (Workers keep their own settings; their consumer has health checks.)
        self.celery.conf.broker_transport_options = {
            **self.celery.conf.broker_transport_options,
            "socket_timeout": TIMEOUT_S,
            "socket_connect_timeout": TIMEOUT_S,
        }
        self.celery.conf.broker_connection_timeout = TIMEOUT_S
        self.celery.conf.task_publish_retry_policy = {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 0.5,
        }
        self.redis: Any = fail_fast(settings.broker_url)

    def fill(self, wanted: list[Demand]) -> None:
        if wanted and tickets.forget_all_after_restart(self.redis):
            log.warning("Redis restarted: trial tasks are queued afresh")
        for demand in wanted:
            # One spare ticket waits in the queue while trials remain beyond the open
            # slots: the slot that frees up next takes it at once, without waiting for
            # this loop to hear of the trial's end. Too early, it costs one 409.
            spare = 1 if demand.left > demand.open_slots else 0
            with tickets.lock(self.redis, demand.study_id):
                missing = demand.open_slots + spare - tickets.pending(self.redis, demand.study_id)
                for _ in range(missing):
                    ticket = uuid.uuid4().hex
                    tickets.add(self.redis, demand.study_id, ticket)
                    try:
                        self.celery.send_task(
                            TASK_NAME,
                            args=[demand.study_id, ticket, self.api_url],
                            queue=demand.queue or DEFAULT_QUEUE,
                        )
                    except Exception:
                        # A ticket without its task would hold a slot until its TTL
                        # (10 minutes): the study would run below max_parallel_trials.
                        with contextlib.suppress(Exception):
                            tickets.take(self.redis, demand.study_id, ticket)
                        raise
                if missing > 0:
                    log.debug("study %s: queued %d trial tasks", demand.study_id, missing)

    def stop(self) -> None:
        super().stop()
        self.celery.close()
        self.redis.close()
