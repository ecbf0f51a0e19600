from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.core.notify import Change
from app.live.hub import Hub
from tests.fixtures.services import REDIS_URL, redis_available


def _run(scenario) -> None:
    # A loop of its own in a thread: playwright's sync API may own this thread's loop
    # when the browser tests share the worker.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(scenario())).result()


async def _receive(subscription, timeout: float = 3.0):
    return await asyncio.wait_for(subscription.queue.get(), timeout)


def test_changes_from_other_threads_reach_study_and_list_listeners() -> None:
    async def scenario() -> None:
        hub = Hub()
        await hub.start()
        try:
            async with hub.listen(1) as one, hub.listen(2) as two, hub.listen(None) as every:
                thread = threading.Thread(
                    target=hub._on_change, args=(Change(1, "metrics", {"trial_id": 5}),)
                )
                thread.start()
                thread.join()
                assert await _receive(one) == {
                    "study_id": 1,
                    "kind": "metrics",
                    "data": {"trial_id": 5},
                }
                assert (await _receive(every))["study_id"] == 1
                assert two.queue.empty()
        finally:
            await hub.stop()

    _run(scenario)


def test_a_slow_listener_is_told_to_resync_instead_of_growing_without_bound() -> None:
    async def scenario() -> None:
        hub = Hub()
        await hub.start()
        try:
            async with hub.listen(1) as sub:
                for i in range(sub.queue.maxsize + 5):
                    hub.deliver({"study_id": 1, "kind": "metrics", "data": {"i": i}})
                assert sub.overflowed
        finally:
            await hub.stop()

    _run(scenario)


@pytest.mark.redis
def test_redis_fans_changes_out_to_every_api_process() -> None:
    if not redis_available():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")

    async def scenario() -> None:
        scope = f"test-{uuid.uuid4()}"
        a, b, other = Hub(REDIS_URL, scope), Hub(REDIS_URL, scope), Hub(REDIS_URL, "elsewhere")
        await a.start()
        await b.start()
        await other.start()
        try:
            async with a.listen(7) as on_a, b.listen(7) as on_b, other.listen(7) as on_other:
                await asyncio.to_thread(
                    a._on_change, Change(7, "trial", {"id": 1, "state": "completed"})
                )
                assert (await _receive(on_b))["data"]["state"] == "completed"
                assert (await _receive(on_a))["kind"] == "trial"  # once, through Redis
                await asyncio.sleep(0.2)
                assert on_a.queue.empty() and on_other.queue.empty()
        finally:
            await other.stop()
            await a.stop()
            await b.stop()

    _run(scenario)
