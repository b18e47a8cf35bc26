"""Never two controllers at once: while Go Smith holds its leader lock (a `smith-leader-elect` ConfigMap
with client-go's leader record, renewed within its lease), Smith acts on no Bundle; it takes them up the
moment the lock is released or runs out unrenewed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio

from live import bundle, get_bundle, until_condition
from smith_engine.handover import LEADER_ANNOTATION, LOCK_NAME
from smith_kube import KubeClient
from smith_kube.client import MERGE_PATCH
from support import config_map, resource


def record(holder: str, lease_seconds: int) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {
            "holderIdentity": holder,
            "leaseDurationSeconds": lease_seconds,
            "acquireTime": now,
            "renewTime": now,
            "leaderTransitions": 0,
        }
    )


@pytest_asyncio.fixture
async def lock(kube: KubeClient, namespace: str) -> AsyncIterator[Any]:
    """Go Smith's lock, written as it writes it; removed after the test whatever happens (a lock left
    behind would stop the shared controller for every other test)."""

    async def hold(holder: str, lease_seconds: int) -> None:
        annotations = {LEADER_ANNOTATION: record(holder, lease_seconds)}
        meta = {"name": LOCK_NAME, "namespace": namespace, "annotations": annotations}
        await kube.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}, field_manager="go-smith"
        )

    try:
        yield hold
    finally:
        await kube.delete("v1", "ConfigMap", LOCK_NAME, namespace=namespace)


async def test_smith_waits_while_go_smith_holds_its_lock_then_takes_over(
    kube: KubeClient, namespace: str, smith: Any, lock: Any
) -> None:
    await lock("go-smith-7d9f-smith", 3)  # renewed now, for 3 s; never again: it runs out
    await kube.create(bundle("first", namespace, resource("a", config_map("a", {"k": "v"}))))
    await asyncio.sleep(1.5)
    assert "status" not in await get_bundle(kube, namespace, "first"), "Smith acted under Go Smith's lock"
    await until_condition(kube, namespace, "first", "Ready", within=30)  # once the lease ran out

    await lock("go-smith-7d9f-smith", 300)  # Go Smith back, renewing
    await kube.create(bundle("second", namespace, resource("b", config_map("b", {"k": "v"}))))
    await asyncio.sleep(1.5)
    assert "status" not in await get_bundle(kube, namespace, "second"), "Smith acted under Go Smith's lock"
    await kube.patch(  # Go Smith stops and releases its lock, as client-go's ReleaseOnCancel does
        "v1",
        "ConfigMap",
        LOCK_NAME,
        {"metadata": {"annotations": {LEADER_ANNOTATION: record("", 1)}}},
        namespace=namespace,
        content_type=MERGE_PATCH,
    )
    await until_condition(kube, namespace, "second", "Ready", within=30)
