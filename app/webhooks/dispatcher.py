"""Sends webhook deliveries: an asyncio task of the process that runs the work that
must run once (`app/main.RunOnce`, beside the heartbeat sweep).

It wakes as soon as a delivery is committed in this process (`core/notify`, kind
"webhook"), or in another API process of `tunelab serve --workers N` (the live hub's
Redis fan-out carries the same note), and polls every `webhook_poll_s` as a fallback
(the CLI, a Redis outage) and for retries that come due. Each round claims the due deliveries (leased, so that a crash
mid-send leaves them to be retried; on PostgreSQL `FOR UPDATE SKIP LOCKED`), POSTs them
concurrently with one shared HTTP client (a slow receiver holds at most
PER_WEBHOOK of the slots, never the others'), and records each outcome: delivered on
2xx, retried with exponential backoff and jitter otherwise, failed after
`webhook_max_attempts`; 410 Gone turns the webhook off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import datetime

import httpx
from anyio import to_thread

from app.core import notify
from app.db.session import Database
from app.db.types import utcnow
from app.live.hub import Hub
from app.settings import Settings
from app.webhooks import service
from app.webhooks.outbox import WAKE_KIND
from tunelab.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = logging.getLogger("tunelab.webhooks")

# Concurrent POSTs to one webhook: a receiver that hangs slows only itself.
PER_WEBHOOK = 4
# Seconds between prunings of the delivery log.
PRUNE_EVERY_S = 60.0
USER_AGENT = "Tunelab-Webhooks/1"
# Bytes of a receiver's error answer kept in the log.
ERROR_BYTES = 500


class Dispatcher:
    def __init__(self, settings: Settings, database: Database, hub: Hub | None = None) -> None:
        """`hub`: the live hub of a server of several processes, to hear their commits."""
        self.database = database
        self.hub = hub
        self.poll_s = settings.webhook_poll_s
        self.timeout_s = settings.webhook_timeout_s
        self.concurrency = max(1, settings.webhook_concurrency)
        self.keep = settings.webhook_keep_deliveries
        self.public_url = settings.public_url
        self.policy = service.Policy(
            max_attempts=settings.webhook_max_attempts,
            retry_base_s=settings.webhook_retry_base_s,
            retry_max_s=settings.webhook_retry_max_s,
            # A sender that dies mid-POST leaves its delivery due again after this.
            lease_s=settings.webhook_timeout_s + 30.0,
        )
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_webhook: Counter[int] = Counter()
        self._next_due: datetime | None = None
        self._pruned_at = 0.0
        # Whether the last round left due deliveries behind (a finished send then wakes it).
        self._backlog = False
        self._failing = False

    def _on_change(self, change: notify.Change) -> None:
        """Called in the committing thread."""
        if change.kind == WAKE_KIND and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        unsubscribe = notify.subscribe(self._on_change)
        listener = asyncio.create_task(self._listen(self.hub)) if self.hub is not None else None
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=16),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        try:
            while True:
                self._wake.clear()
                try:
                    full = await self._round(client)
                    if self._failing:
                        log.info("webhook deliveries resumed")
                        self._failing = False
                except Exception as exc:  # a database hiccup must not end the dispatcher
                    if not self._failing:
                        log.warning("webhook deliveries paused: %s", exc, exc_info=True)
                        self._failing = True
                    full = False
                self._backlog = full
                # With a backlog the next round starts when a send ends (or after a poll).
                await self._wait(self.poll_s if full else self._sleep_s())
        finally:
            unsubscribe()
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await client.aclose()

    async def _listen(self, hub: Hub) -> None:
        """Wakes on the notes of other API processes (through Redis)."""
        async with hub.listen(None) as subscription:
            while True:
                change = await subscription.queue.get()
                if subscription.overflowed:  # notes were dropped: look now
                    subscription.overflowed = False
                    self._wake.set()
                if change.get("kind") == WAKE_KIND:
                    self._wake.set()

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _sleep_s(self) -> float:
        if self._next_due is None:
            return self.poll_s
        due_in = (self._next_due - utcnow()).total_seconds()
        # Never a busy loop: a due row another transaction holds waits a moment.
        return max(0.05, min(self.poll_s, due_in))

    async def _round(self, client: httpx.AsyncClient) -> bool:
        """Claims and starts what is due; True when it took as many as it could."""
        free = self.concurrency - len(self._tasks)
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            await to_thread.run_sync(self._prune)
        if free <= 0:
            return True
        busy = frozenset(w for w, n in self._per_webhook.items() if n >= PER_WEBHOOK)
        outgoing, self._next_due = await to_thread.run_sync(self._claim, free, busy)
        for item in outgoing:
            self._per_webhook[item.webhook_id] += 1
            task = asyncio.create_task(self._deliver(client, item))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(outgoing) >= free or bool(busy)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._backlog:  # a freed slot (or webhook slot) lets more go
            self._wake.set()

    def _claim(
        self, limit: int, busy: frozenset[int]
    ) -> tuple[list[service.Outgoing], datetime | None]:
        with self.database.session() as session:
            return service.claim(session, self.policy, limit, busy, self.public_url)

    def _record(self, outcome: service.Outcome) -> None:
        with self.database.session() as session:
            service.record(session, self.policy, outcome)

    def _prune(self) -> None:
        with self.database.session() as session:
            removed = service.prune(session, self.keep)
        if removed:
            log.info("pruned %d old webhook deliveries", removed)

    async def _deliver(self, client: httpx.AsyncClient, item: service.Outgoing) -> None:
        try:
            outcome = await post(client, item, self.timeout_s)
            await to_thread.run_sync(self._record, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %d could not be recorded", item.delivery_id)
        finally:
            self._per_webhook[item.webhook_id] -= 1
            if self._per_webhook[item.webhook_id] <= 0:
                del self._per_webhook[item.webhook_id]


def headers_for(item: service.Outgoing, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: item.event,
        DELIVERY_HEADER: str(item.delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(item.body, item.secret, timestamp),
    }


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def post(
    client: httpx.AsyncClient, item: service.Outgoing, timeout_s: float = 5.0
) -> service.Outcome:
    """One attempt, over within `timeout_s` in all (a receiver that drips its answer
    too); never raises for the receiver's sake (refused, timed out, 5xx)."""
    started = time.perf_counter()
    status: int | None = None
    error = ""
    retry_after: float | None = None
    try:
        async with asyncio.timeout(timeout_s):
            request = client.build_request(
                "POST", item.url, content=item.body, headers=headers_for(item, int(time.time()))
            )
            response = await client.send(request, stream=True)
            try:
                status = response.status_code
                if not 200 <= status < 300:
                    # Only the start of an error page is kept (and read).
                    head = b""
                    async for chunk in response.aiter_bytes():
                        head += chunk
                        if len(head) >= ERROR_BYTES:
                            break
                    text = head[:ERROR_BYTES].decode(errors="replace")
                    error = f"HTTP {status}: {text}" if text else f"HTTP {status}"
                    retry_after = _retry_after(response) if status in (429, 503) else None
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException) as exc:
        error = f"timed out after {timeout_s:g} s ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return service.Outcome(
        delivery_id=item.delivery_id,
        webhook_id=item.webhook_id,
        attempt=item.attempt,
        status=status,
        error=error,
        duration_ms=round((time.perf_counter() - started) * 1000),
        retry_after_s=retry_after,
    )
