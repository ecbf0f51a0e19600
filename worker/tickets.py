"""Trial tasks sent but not yet started, per study, kept in Redis.

A task is a ticket for one slot-start, not a trial: it asks the API for its trial only
when it starts. The dispatcher keeps `max_parallel_trials - running - pending` tickets
in flight; a task removes its ticket once the API has answered its ask. A duplicate or
late ticket only costs one ask that answers 409."""

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
