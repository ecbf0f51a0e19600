"""Redis clients for the API process that fail within a bounded time.

The API talks to Redis from the demand loop and from the live-change publisher. redis-py
8's defaults retry a failed command ten times, each up to its socket timeout: a command
against a Redis that is restarting, loading its dump or stuck saving one could then wait
half a minute or more. The callers here retry on their own schedule (the next sweep, the
next change), so one attempt with short timeouts is what they need."""

from __future__ import annotations

from typing import Any

TIMEOUT_S = 2.0


def fail_fast(url: str, timeout_s: float = TIMEOUT_S) -> Any:
    """A synchronous client: one attempt per command, connect and read bounded."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def fail_fast_async(url: str, timeout_s: float = TIMEOUT_S, health_check_s: int = 10) -> Any:
    """An asyncio client for a long-lived subscription: a bounded connect, and a PING every
    `health_check_s` while idle so that a connection Redis silently dropped is noticed."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=health_check_s,
        retry=Retry(NoBackoff(), 0),
    )
