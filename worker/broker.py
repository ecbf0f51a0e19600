"""The Redis transport the Celery app uses: kombu's, made to outlive a Redis restart.

A task's message stays unacknowledged while its trial runs (`task_acks_late`). When the
connection drops (Redis restarts), Celery closes the channel and connects a new one, and
two steps of kombu can then fail with an AttributeError that Celery does not expect, which
shuts the worker process down ("Unrecoverable error") and leaves the study waiting for a
worker that is gone:

- closing the channel puts its unacknowledged messages back into their queue, which needs
  a new Redis client when the connection's transport may already be gone;
- a task that ends after that acknowledges (or rejects) its message on the closed channel.

Here both steps give up quietly when the connection is gone. The trials lose nothing: a
task only asks the API for a trial, and it has already asked once it runs. Messages that
could not be put back stay in Redis and come back after the visibility timeout, where a
second delivery costs one ask; trials of a lost worker are recovered by their heartbeat.
A worker that shuts down normally still puts its unstarted messages back at once."""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis
from redis.exceptions import RedisError

log = logging.getLogger("tunelab.worker")


class QoS(redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)
        except (AttributeError, OSError, RedisError):
            log.warning("Redis is gone: unacknowledged tasks return after the visibility timeout")
            # Forgotten here, as a successful restore does: kombu asserts that none is left.
            delivered: Any = self._delivered
            delivered.clear()


class Channel(redis.Channel):
    QoS = QoS

    def _gone(self) -> bool:
        transport = self.connection
        return bool(self.closed) or transport is None or transport.client is None

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        if not self._gone():
            super().basic_ack(delivery_tag, multiple)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if not self._gone():
            super().basic_reject(delivery_tag, requeue)


class Transport(redis.Transport):
    Channel = Channel
