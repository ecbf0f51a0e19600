"""Fans committed changes out to SSE subscribers, across API processes through Redis.

`core/notify` calls the hub's listener after a commit, in whatever thread committed.
Without Redis the hub hands the change to this process's subscribers. With Redis every
change is published on one channel and every API process (this one included) delivers
what it reads from that channel, so a browser connected to process A sees a metric
point that a worker reported to process B.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from app.core import notify

log = logging.getLogger("tunelab.live")

CHANNEL = "tunelab:changes"
QUEUE_SIZE = 2000

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
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.redis_url:
            import redis

            self._publisher = redis.Redis.from_url(self.redis_url, socket_timeout=2)
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
        if self._publisher is not None:
            try:
                self._publisher.publish(self.channel, json.dumps(payload, default=str))
                return
            except Exception:  # Redis down: this process's browsers still get it
                log.warning("publishing a change to Redis failed", exc_info=True)
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
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(self.redis_url)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(self.channel)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
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
