"""With a broker: keeps each running study's trial tasks queued for Celery workers."""

from __future__ import annotations

import uuid
from typing import Any

import redis

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
        self.redis: Any = redis.Redis.from_url(settings.broker_url)

    def fill(self, wanted: list[Demand]) -> None:
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
                    self.celery.send_task(
                        TASK_NAME,
                        args=[demand.study_id, ticket, self.api_url],
                        queue=demand.queue or DEFAULT_QUEUE,
                    )
                if missing > 0:
                    log.debug("study %s: queued %d trial tasks", demand.study_id, missing)

    def stop(self) -> None:
        super().stop()
        self.celery.close()
        self.redis.close()
