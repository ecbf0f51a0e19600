"""Fans committed changes out to SSE subscribers, across API processes through Redis.

`core/notify` calls the hub's listener after a commit, in whatever thread committed.
Without Redis the hub hands the change to this process's subscribers. With Redis every
change is published on one channel and every API process (this one included) delivers
what it reads from that channel, so a browser connected to process A sees a metric
point that a worker reported to process B.

The committing thread is a request's (or the sweeper's), and it still holds its database
connection: it only puts the change into a bounded outbox. One publisher thread sends the
outbox to Redis with short timeouts and, while Redis is away (restarting, loading, stuck),
hands changes to this process's subscribers instead, so no request ever waits on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from app.core import notify
from app.core.redis_clients import fail_fast, fail_fast_async

log = logging.getLogger("tunelab.live")

CHANNEL = "tunelab:changes"
QUEUE_SIZE = 2000
# Changes waiting for the publisher; beyond this (Redis slow, not down) they go local only.
OUTBOX_SIZE = 10_000
# After a failed publish, changes go local only for this long before Redis is tried again,
# so that a Redis outage costs one timeout per interval, not one per change.
REDIS_RETRY_S = 1.0

Payload = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One SSE connection's inbox; `overflowed` tells it to resync instead of replaying."""

    study_id: int | None
    queue: asyncio.Queue[Payload] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


class Hub:
    def __init__(self, redis_url: str = "", scope: str = "") -> None:
        """`scope` (the database URL) names the channel: API processes of one database
        share it, and other deployments on the same Redis stay apart."""
        self.redis_url = redis_url
        self.channel = f"{CHANNEL}:{hashlib.sha1(scope.encode()).hexdigest()[:12]}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[int | None, set[Subscription]] = defaultdict(set)
        self._unsubscribe: Callable[[], None] | None = None
        self._publisher: Any = None
        self._outbox: queue.Queue[Payload | None] = queue.Queue(OUTBOX_SIZE)
        self._publisher_thread: threading.Thread | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.redis_url:
            self._publisher = fail_fast(self.redis_url)
            self._publisher_thread = threading.Thread(
                target=self._publish_outbox, name="live-publisher", daemon=True
            )
            self._publisher_thread.start()
            ready = asyncio.Event()
            self._reader = asyncio.create_task(self._read_redis(ready))
            # Changes committed before the subscription is live would be lost.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 3)
        self._unsubscribe = notify.subscribe(self._on_change)

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._publisher_thread is not None:
            with contextlib.suppress(queue.Full):
                self._outbox.put(None, timeout=1)
            await asyncio.to_thread(self._publisher_thread.join, 5)
        if self._publisher is not None:
            self._publisher.close()

    @contextlib.asynccontextmanager
    async def listen(self, study_id: int | None) -> AsyncIterator[Subscription]:
        """`study_id=None` listens to every study (the studies list)."""
        subscription = Subscription(study_id)
        self._subscribers[study_id].add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers[study_id].discard(subscription)

    def _on_change(self, change: notify.Change) -> None:
        payload = {"study_id": change.study_id, "kind": change.kind, "data": change.data}
        if self._publisher_thread is not None:
            try:
                self._outbox.put_nowait(payload)
                return
            except queue.Full:  # Redis cannot keep up: this process's browsers still get it
                pass
        self._deliver_threadsafe(payload)

    def _publish_outbox(self) -> None:
        """The publisher thread: Redis when it answers, this process's subscribers else."""
        failing_since: float | None = None
        retry_at = 0.0
        while (payload := self._outbox.get()) is not None:
            if time.monotonic() >= retry_at:
                try:
                    self._publisher.publish(self.channel, json.dumps(payload, default=str))
                except Exception:
                    if failing_since is None:  # once per outage, not once per change
                        log.warning("publishing changes to Redis failed", exc_info=True)
                        failing_since = time.monotonic()
                    retry_at = time.monotonic() + REDIS_RETRY_S
                else:
                    if failing_since is not None:
                        log.warning(
                            "publishing to Redis again after %.1f s",
                            time.monotonic() - failing_since,
                        )
                        failing_since = None
                    continue
            self._deliver_threadsafe(payload)

    def _deliver_threadsafe(self, payload: Payload) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.deliver(payload)
        else:
            loop.call_soon_threadsafe(self.deliver, payload)

    def deliver(self, payload: Payload) -> None:
        """Puts a change into every interested inbox (on the event loop)."""
        targets = self._subscribers.get(payload.get("study_id")), self._subscribers.get(None)
        for group in targets:
            for subscription in group or ():
                if subscription.overflowed:
                    continue
                try:
                    subscription.queue.put_nowait(payload)
                except asyncio.QueueFull:
                    subscription.overflowed = True

    async def _read_redis(self, ready: asyncio.Event) -> None:
        while True:
            client = fail_fast_async(self.redis_url)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(self.channel)
                ready.set()
                while True:
                    # A bounded wait rather than `listen()`: each call also runs the
                    # connection's health check, so a dead connection is found and replaced.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        self.deliver(json.loads(message["data"]))
                    except (ValueError, TypeError):
                        continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("Redis subscription lost; reconnecting", exc_info=True)
                # Subscribers may have missed changes: ask every one to resync.
                for group in self._subscribers.values():
                    for subscription in group:
                        subscription.overflowed = True
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
