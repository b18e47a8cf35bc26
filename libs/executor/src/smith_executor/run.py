"""The whole life of an executor process: serve, publish the Executor resource, heartbeat, withdraw."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

from smith_wire.rpc import run_service

from smith_engine.model import GroupKind
from smith_executor import registration
from smith_executor.servicer import Assess, ExecutorServicer
from smith_kube import KubeClient, KubeConfig


def run_executor(*, name: str, kinds: Sequence[GroupKind], assess: Assess, default_address: str) -> None:
    kube = KubeClient(KubeConfig.auto())
    servicer = ExecutorServicer(kube, kinds=kinds, assess=assess)
    tasks: list[asyncio.Task[None]] = []

    async def started(port: int) -> None:
        endpoint = os.environ.get("SMITH_ADVERTISE", f"127.0.0.1:{port}")
        await registration.publish(kube, name=name, endpoint=endpoint, kinds=kinds)
        tasks.append(asyncio.create_task(registration.keep_alive(kube, name=name)))

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
