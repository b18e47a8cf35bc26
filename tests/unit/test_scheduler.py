"""The controller's work scheduling: of two times a Bundle asks to be looked at again, the sooner wins."""

from __future__ import annotations

import asyncio

from smith_controller.scheduler import Scheduler


async def woken_after(first: float, second: float) -> float:
    """Seconds until the work runs, after asking for it in `first` and then in `second` seconds."""
    loop = asyncio.get_running_loop()
    ran: asyncio.Future[float] = loop.create_future()

    async def work(key: str) -> bool:
        if not ran.done():
            ran.set_result(loop.time())
        return False

    scheduler: Scheduler[str] = Scheduler(work)
    began = loop.time()
    scheduler.later("b", first)
    scheduler.later("b", second)
    try:
        return await asyncio.wait_for(ran, timeout=5) - began
    finally:
        await scheduler.stop()


async def test_a_sooner_time_replaces_a_later_one() -> None:
    assert await woken_after(60, 0.05) < 5


async def test_a_later_time_leaves_a_sooner_one() -> None:
    assert await woken_after(0.05, 60) < 5
