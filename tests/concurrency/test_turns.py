"""Study turns (app/db/session.Turns): units of work that lock one study's row go into a
worker thread one at a time per process, in arrival order; other studies do not wait."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.db.session import Turns


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run in a thread of its own: another test in this process may have left an
    event loop set (or running) in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def test_turns_are_first_come_first_served_and_one_at_a_time() -> None:
    turns = Turns(depth=1)
    order: list[int] = []
    inside = 0
    most_inside = 0

    async def unit(n: int) -> None:
        nonlocal inside, most_inside
        async with turns.turn("study-1"):
            inside += 1
            most_inside = max(most_inside, inside)
            order.append(n)
            await asyncio.sleep(0.001)
            inside -= 1

    async def main() -> None:
        tasks = []
        for n in range(50):
            tasks.append(asyncio.create_task(unit(n)))
            await asyncio.sleep(0)  # they arrive in this order
        await asyncio.gather(*tasks)

    run(main())
    assert order == list(range(50))
    assert most_inside == 1
    assert len(turns) == 0  # nothing kept for a study nobody waits on


def test_other_studies_do_not_wait() -> None:
    turns = Turns(depth=1)
    finished: list[str] = []

    async def slow() -> None:
        async with turns.turn(1):
            await asyncio.sleep(0.2)
            finished.append("slow")

    async def quick() -> None:
        async with turns.turn(2):
            finished.append("quick")

    async def main() -> None:
        await asyncio.gather(slow(), quick())

    run(main())
    assert finished == ["quick", "slow"]


def test_a_unit_that_raises_gives_its_turn_up() -> None:
    turns = Turns(depth=1)

    async def failing() -> None:
        async with turns.turn(1):
            raise RuntimeError("boom")

    async def main() -> str:
        try:
            await failing()
        except RuntimeError:
            pass
        async with turns.turn(1):
            return "next"

    assert run(asyncio.wait_for(main(), 5)) == "next"
    assert len(turns) == 0
