"""A Bundle's status is written at most once per window while it only makes progress: a pass that comes
within the window of the last write and leaves the Bundle in progress tells what it did with the next
report. READY is written at once, with everything the held passes did (their Events included), and a
held report is written when the window closes even if no event comes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from live import (
    Json,
    bundle,
    condition,
    exists,
    get_bundle,
    install,
    resource_condition,
    sleeper,
    unique_group,
    until_condition,
    wake,
)
from smith_engine.readiness import READY_WHEN_PATH, READY_WHEN_VALUE
from smith_kube import KubeClient
from support import config_map, crd_object, eventually, resource

pytestmark = pytest.mark.controlplane


def held() -> float:
    return REGISTRY.get_sample_value("smith_status_reports_held_total") or 0.0


async def window_of(smith: Any, seconds: float) -> AsyncIterator[Any]:
    await smith.kill_controller()
    # no resync, no membership (its changes reconcile every Bundle): nothing to hide the window's timer
    await smith.start_controller(resync_seconds=0, status_window=seconds, lease_seconds=0)
    try:
        yield smith
    finally:
        await smith.kill_controller()
        await smith.start_controller()


@pytest_asyncio.fixture
async def long_window(smith: Any) -> AsyncIterator[Any]:
    async for system in window_of(smith, 600):
        yield system


@pytest_asyncio.fixture
async def short_window(smith: Any) -> AsyncIterator[Any]:
    async for system in window_of(smith, 5):
        yield system


async def chain_of_sleepers(kube: KubeClient, namespace: str) -> str:
    """A Bundle: Sleepers a → b → c, each made when the one before is awake, then a ConfigMap; returned
    once its first status (a in progress; the first write is never held) is written."""
    group = unique_group()
    await install(
        kube, crd_object(group, "Sleeper", **{READY_WHEN_PATH: "{$.status.state}", READY_WHEN_VALUE: "Awake"})
    )
    await kube.create(
        bundle(
            "steps",
            namespace,
            resource("a", sleeper(group, "a")),
            resource("b", sleeper(group, "b"), depends_on=["a"]),
            resource("c", sleeper(group, "c"), depends_on=["b"]),
            resource("d", config_map("d", {"k": "v"}), depends_on=["c"]),
        )
    )

    async def a_in_progress() -> bool:
        return (await states(kube, namespace))["a"] == "InProgress"

    await eventually(a_in_progress, what="the first status: a in progress")
    return group


async def states(kube: KubeClient, namespace: str) -> dict[str, str]:
    """Each resource's condition that is True, as the Bundle's status says."""
    got = await get_bundle(kube, namespace, "steps")
    return {
        name: next(
            (
                c
                for c in ("Ready", "InProgress", "Blocked", "Error")
                if resource_condition(got, name, c).get("status") == "True"
            ),
            "",
        )
        for name in "abcd"
    }


async def reasons(kube: KubeClient, namespace: str) -> list[tuple[str, str]]:
    events = (await kube.list("v1", "Event", namespace))["items"]
    return [(e["reason"], e.get("message", "")) for e in events]


async def test_progress_within_the_window_is_told_with_the_next_report_and_ready_at_once(
    kube: KubeClient, namespace: str, long_window: Any
) -> None:
    group = await chain_of_sleepers(kube, namespace)
    first = await states(kube, namespace)
    assert first == {"a": "InProgress", "b": "Blocked", "c": "Blocked", "d": "Blocked"}

    for name, made in (("a", "b"), ("b", "c")):
        before = held()
        await wake(kube, group, namespace, name)

        async def made_and_held(made: str = made, before: float = before) -> bool:
            return await exists(kube, f"{group}/v1", "Sleeper", made, namespace) and held() > before

        await eventually(made_and_held, what=f"{made} made and its pass's report held")
        assert await states(kube, namespace) == first, "the status of a pass within the window is held"

    await wake(kube, group, namespace, "c")
    ready = await until_condition(kube, namespace, "steps", "Ready", within=30)
    assert condition(ready, "Ready")["status"] == "True"
    assert await states(kube, namespace) == dict.fromkeys("abcd", "Ready")
    stored = await kube.get("v1", "ConfigMap", "d", namespace)
    assert stored["data"] == {"k": "v"}

    async def every_creation_told() -> bool:
        told = await reasons(kube, namespace)
        made = ["Sleeper a", "Sleeper b", "Sleeper c", "ConfigMap d"]
        return all(any(r == "Created" and m.startswith(f"created {o} ") for r, m in told) for o in made)

    await eventually(every_creation_told, what="a Created Event for each object, the held passes' too")


async def test_a_held_report_is_written_when_the_window_closes_without_any_event(
    kube: KubeClient, namespace: str, short_window: Any
) -> None:
    group = await chain_of_sleepers(kube, namespace)
    before = held()
    await wake(kube, group, namespace, "a")  # at once: b is made within the 5 s window, its report held

    async def b_told() -> bool:
        return (await states(kube, namespace))["b"] == "InProgress"

    await eventually(b_told, what="b in progress, written when the window closed", within=20)
    assert held() > before, "the pass that made b was held"
    told: Json = await get_bundle(kube, namespace, "steps")
    assert resource_condition(told, "a", "Ready")["status"] == "True"
