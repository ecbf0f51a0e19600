"""Trial tasks sent but not yet started, per study, kept in Redis.

A task is a ticket for one slot-start, not a trial: it asks the API for its trial only
when it starts. The dispatcher keeps `max_parallel_trials - running - pending` tickets
in flight; a task removes its ticket once the API has answered its ask. A duplicate or
late ticket only costs one ask that answers 409.

A Redis restart can lose a task but keep its ticket: a message a worker popped just before
the shutdown is gone, while the dump saved at shutdown holds the ticket. Such a ticket
would hold one of its study's slots until its TTL, so after a restart (a new `run_id`) the
dispatcher drops every ticket and queues afresh; a task that survived is then one extra."""

from __future__ import annotations

import time
from typing import Any

# A ticket older than this is presumed lost (its broker message dropped) and not counted.
TICKET_TTL_S = 600.0


def _key(study_id: int) -> str:
    return f"tunelab:tickets:{study_id}"


def add(redis: Any, study_id: int, ticket: str) -> None:
    redis.hset(_key(study_id), ticket, str(time.time()))
    redis.expire(_key(study_id), int(TICKET_TTL_S * 2))


def take(redis: Any, study_id: int, ticket: str) -> None:
    redis.hdel(_key(study_id), ticket)


def pending(redis: Any, study_id: int) -> int:
    entries = redis.hgetall(_key(study_id))
    now = time.time()
    stale = [t for t, sent in entries.items() if now - float(sent) > TICKET_TTL_S]
    if stale:
        redis.hdel(_key(study_id), *stale)
    return len(entries) - len(stale)


def lock(redis: Any, study_id: int, timeout_s: float = 5.0) -> Any:
    """Serializes dispatchers of several API processes for one study."""
    return redis.lock(f"tunelab:dispatch:{study_id}", timeout=timeout_s, blocking_timeout=timeout_s)


# The `run_id` of the Redis server the tickets were counted on; it changes on every start.
_RUN_ID_KEY = "tunelab:dispatch:redis-run-id"


def forget_all_after_restart(redis: Any) -> bool:
    """Drops every study's tickets once per Redis start; True if there were tickets of an
    earlier start. Of several API processes, the one whose SET ... GET swaps the id does it."""
    run_id = redis.info("server")["run_id"]
    previous = redis.set(_RUN_ID_KEY, run_id, get=True)
    if previous is not None and previous.decode() == run_id:
        return False
    stale = list(redis.scan_iter(match="tunelab:tickets:*", count=1000))
    if stale:
        redis.delete(*stale)
    return bool(stale)
