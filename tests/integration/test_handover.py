"""Never two controllers at once: while Go Smith holds its leader lock (a `smith-leader-elect` ConfigMap
with client-go's leader record, renewed within its lease), Smith acts on no Bundle and says so in a
condition on it, keeping the status Go Smith wrote; it takes them up the moment the lock is released or
runs out unrenewed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest_asyncio

from live import Json, bundle, exists, get_bundle, until_condition
from smith_engine.conditions import conditions_of
from smith_engine.handover import HELD_CONDITION, HELD_REASON, LEADER_ANNOTATION, LOCK_NAME
from smith_engine.model import API_VERSION
from smith_kube import KubeClient
from smith_kube.client import MERGE_PATCH
from support import config_map, eventually, resource


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
    held = await until_condition(kube, namespace, "first", HELD_CONDITION)
    assert held["status"]["conditions"][0]["reason"] == HELD_REASON
    assert "Go Smith holds its leader lock" in held["status"]["conditions"][0]["message"]
    assert not await exists(kube, "v1", "ConfigMap", "a", namespace), "Smith acted under Go Smith's lock"
    done = await until_condition(kube, namespace, "first", "Ready", within=30)  # once the lease ran out
    assert HELD_CONDITION not in conditions_of(done)

    await lock("go-smith-7d9f-smith", 300)  # Go Smith back, renewing
    await kube.create(bundle("second", namespace, resource("b", config_map("b", {"k": "v"}))))
    await go_smith_writes_status(kube, namespace, "second")
    held = await until_condition(kube, namespace, "second", HELD_CONDITION)
    kept = conditions_of(held)
    assert kept["InProgress"]["reason"] == "", "Go Smith's conditions kept"
    assert held["status"]["resourceStatuses"][0]["name"] == "b", "Go Smith's resource statuses kept"
    assert not await exists(kube, "v1", "ConfigMap", "b", namespace), "Smith acted under Go Smith's lock"
    done = await until_condition(kube, namespace, "first", HELD_CONDITION)  # told of, though Ready before
    assert conditions_of(done)["Ready"]["status"] == "True"

    await kube.patch(  # Go Smith stops and releases its lock, as client-go's ReleaseOnCancel does
        "v1",
        "ConfigMap",
        LOCK_NAME,
        {"metadata": {"annotations": {LEADER_ANNOTATION: record("", 1)}}},
        namespace=namespace,
        content_type=MERGE_PATCH,
    )
    for name in ("first", "second"):  # acted on again: Ready, and the condition gone
        await eventually(partial(taken_up, kube, namespace, name), within=30, what=f"{name} taken up")


async def taken_up(kube: KubeClient, namespace: str, name: str) -> bool:
    conditions = conditions_of(await get_bundle(kube, namespace, name))
    return conditions.get("Ready", {}).get("status") == "True" and HELD_CONDITION not in conditions


async def go_smith_writes_status(kube: KubeClient, namespace: str, name: str) -> None:
    """The status Go Smith writes on a Bundle it is working on: its three conditions (reasons empty) and a
    resource's own."""
    condition = {"lastTransitionTime": "2026-12-07T12:00:00Z", "reason": "", "message": ""}
    status: Json = {
        "observedGeneration": 1,
        "conditions": [
            {**condition, "type": "InProgress", "status": "True"},
            {**condition, "type": "Ready", "status": "False"},
            {**condition, "type": "Error", "status": "False"},
        ],
        "resourceStatuses": [
            {"name": "b", "conditions": [{**condition, "type": "InProgress", "status": "True"}]}
        ],
    }
    await kube.patch(
        API_VERSION,
        "Bundle",
        name,
        {"status": status},
        namespace=namespace,
        content_type=MERGE_PATCH,
        subresource="status",
    )
