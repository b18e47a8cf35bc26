"""Per-Bundle work scheduling: bursts of events for one Bundle coalesce into one reconcile (plus one
more if something arrived while it ran), Bundles reconcile concurrently up to a limit, and a
reconcile that hit a retriable error is run again after an exponential back-off. No polling.

Waiting for a free slot is fair between groups (namespaces): a freed slot goes to the group next in
turn, first come first served within it, so a namespace with a thousand Bundles waiting does not hold
back another namespace's one."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from smith_controller.tasks import cancel_and_wait

Key = TypeVar("Key", bound=Hashable)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


class Scheduler(Generic[Key]):
    def __init__(
        self,
        work: Callable[[Key], Awaitable[bool]],
        *,
        concurrency: int = 16,
        group: Callable[[Key], Hashable] = lambda key: None,
    ) -> None:
        """`work(key)` reconciles one key and returns True when it should be retried later; `group(key)`
        is the group a key takes its turn in (the controller's: the Bundle's namespace)."""
        self._work = work
        self._group = group
        self._free = concurrency
        self._queues: dict[Hashable, deque[asyncio.Future[None]]] = {}  # waiters, by group
        self._turns: deque[Hashable] = deque()  # the groups with waiters, in the order they are served
        self._stopped = False
        self._dirty: set[Key] = set()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._waiting = 0

    @property
    def depth(self) -> int:
        """Keys waiting for a reconcile (the work queue's depth): marked, or waiting for a free slot."""
        return len(self._dirty) + self._waiting

    def pending(self, key: Key) -> bool:
        """A reconcile of `key` is marked or running."""
        return key in self._dirty or key in self._running

    def trigger(self, key: Key) -> None:
        if self._stopped:  # an event that came in during shutdown: the next start looks at everything
            return
        self._dirty.add(key)
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()
        if key not in self._running:
            self._running[key] = asyncio.create_task(self._loop(key), name=f"reconcile {key}")

    def later(self, key: Key, seconds: float) -> None:
        """Trigger `key` in `seconds`, unless something triggers it sooner (a time the plan named): of
        two such times, the sooner is kept."""
        loop = asyncio.get_running_loop()
        if (timer := self._timers.get(key)) is not None:
            if timer.when() <= loop.time() + seconds:
                return
            timer.cancel()
        self._timers[key] = loop.call_later(seconds, self.trigger, key)

    def forget(self, key: Key) -> None:
        self._dirty.discard(key)
        self._failures.pop(key, None)
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()

    async def _loop(self, key: Key) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                await self._acquire(key)
                try:
                    retry = await self._work(key)
                finally:
                    self._release()
                if retry:
                    failures = self._failures[key] = self._failures.get(key, 0) + 1
                    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
                    self._timers[key] = asyncio.get_running_loop().call_later(delay, self.trigger, key)
                else:
                    self._failures.pop(key, None)
        finally:
            self._running.pop(key, None)

    async def _acquire(self, key: Key) -> None:
        if self._free > 0 and not self._turns:
            self._free -= 1
            return
        group = self._group(key)
        if (queue := self._queues.get(group)) is None:
            queue = self._queues[group] = deque()
            self._turns.append(group)
        slot = asyncio.get_running_loop().create_future()
        queue.append(slot)
        self._waiting += 1
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._release()  # handed a slot in the moment it was cancelled: pass it on
            else:
                self._withdraw(group, slot)
            raise
        finally:
            self._waiting -= 1

    def _withdraw(self, group: Hashable, slot: asyncio.Future[None]) -> None:
        if (queue := self._queues.get(group)) is None or slot not in queue:
            return  # passed over already
        queue.remove(slot)
        if not queue:
            del self._queues[group]
            self._turns.remove(group)

    def _release(self) -> None:
        """A slot is free: it goes to the first waiter of the group next in turn (that group's turn then
        comes again after every other group's); waiters cancelled meanwhile are passed over."""
        while self._turns:
            group = self._turns.popleft()
            queue = self._queues[group]
            slot = queue.popleft()
            if queue:
                self._turns.append(group)
            else:
                del self._queues[group]
            if not slot.done():
                slot.set_result(None)
                return
        self._free += 1

    async def stop(self) -> None:
        self._stopped = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._dirty.clear()
        await cancel_and_wait(list(self._running.values()))
