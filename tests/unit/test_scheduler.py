"""The controller's work scheduling: of two times a Bundle asks to be looked at again the sooner wins, and
waiting for a slot is fair between namespaces."""

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


async def test_a_namespace_with_many_bundles_waiting_does_not_hold_back_another_namespaces_one() -> None:
    order: list[tuple[str, str]] = []
    gate, everything = asyncio.Event(), asyncio.Event()

    async def work(key: tuple[str, str]) -> bool:
        order.append(key)
        if len(order) == 1001:
            everything.set()
        await gate.wait()  # the first two hold both slots until everything is queued
        return False

    scheduler: Scheduler[tuple[str, str]] = Scheduler(work, concurrency=2, group=lambda key: key[0])
    try:
        for i in range(1000):
            scheduler.trigger(("noisy", f"b{i}"))
        scheduler.trigger(("quiet", "only"))
        await asyncio.sleep(0.05)
        assert scheduler.depth == 999
        gate.set()
        await asyncio.wait_for(everything.wait(), timeout=10)
    finally:
        await scheduler.stop()
    # two noisy ones held the slots; the quiet one went with the first slot freed after it came
    assert order.index(("quiet", "only")) <= 3, order[:6]
    assert sorted(order) == sorted([("noisy", f"b{i}") for i in range(1000)] + [("quiet", "only")])


async def test_a_stop_cancels_runners_and_waiters_and_nothing_runs_after_it() -> None:
    running = 0
    most = 0
    ran: list[str] = []

    async def work(key: str) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        ran.append(key)
        try:
            await asyncio.sleep(0.01)
        finally:
            running -= 1
        return False

    scheduler: Scheduler[str] = Scheduler(work, concurrency=3, group=lambda key: key[:1])
    for i in range(30):
        scheduler.trigger(f"{'abc'[i % 3]}{i}")
    await asyncio.sleep(0.02)
    await scheduler.stop()  # cancels waiters and runners alike
    assert scheduler.depth == 0
    assert running == 0
    assert most == 3
    done = len(ran)
    scheduler.trigger("late")  # an event in the middle of shutting down: no work after the stop
    await asyncio.sleep(0.05)
    assert len(ran) == done
    assert scheduler.depth == 0
