"""The whole life of an executor process: serve, publish the Executor resource, heartbeat, withdraw."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

from smith_wire.rpc import run_service

from smith_executor import registration
from smith_executor.servicer import ExecutorServicer, Family
from smith_kube import KubeClient, KubeConfig, TokenBucket

Republish = Callable[[], Coroutine[Any, Any, None]]
Background = Callable[[KubeClient, Republish], Coroutine[Any, Any, None]]


async def register_executor(
    kube: KubeClient,
    name: str,
    endpoint: str,
    family: Family,
    fallback: bool = False,
    background: Background | None = None,
) -> list[asyncio.Task[None]]:
    """Publish the Executor resource of `family` served at `endpoint`; the tasks that keep it current
    (its heartbeat, and `background(kube, republish)`) until cancelled."""

    async def republish() -> None:
        await registration.publish(
            kube, name=name, endpoint=endpoint, kinds=family.kinds(), fallback=fallback
        )

    await republish()
    tasks = [asyncio.create_task(registration.keep_alive(kube, name=name))]
    if background is not None:
        tasks.append(asyncio.create_task(background(kube, republish)))
    return tasks


def run_executor(
    *,
    name: str,
    family: Family | Callable[[KubeClient], Family],
    default_address: str,
    fallback: bool = False,
    background: Background | None = None,
) -> None:
    """Serve `family` (or the family made from the executor's API client) and keep its Executor
    resource current. `background(kube, republish)` runs beside the server, e.g. a watch of CRDs
    that calls `republish()` when the kinds served change."""
    kube = KubeClient(KubeConfig.auto(), rate=TokenBucket.from_env())
    served = family(kube) if callable(family) else family
    servicer = ExecutorServicer(kube, served)
    tasks: list[asyncio.Task[None]] = []

    async def started(port: int) -> None:
        endpoint = os.environ.get("SMITH_ADVERTISE", f"127.0.0.1:{port}")
        tasks.extend(await register_executor(kube, name, endpoint, served, fallback, background))

    async def stopping() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await registration.withdraw(kube, name=name)
        await kube.close()

    run_service(
        f"smith-executor-{name}",
        [servicer.registration()],
        default_address=default_address,
        started=started,
        stopping=stopping,
    )
