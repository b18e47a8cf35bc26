"""The status service writes a Bundle's status over the version the reconcile read. A reconcile that read
the Bundle before its previous status write came back must neither tell a transition twice (Events,
transition metrics) nor lose its own news."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from smith_controller.clients import bundle_ref
from smith_status.servicer import StatusServicer
from smith_wire.convert import dump, verdict_to_proto
from smith_wire.rpc import channel

from live import (
    Json,
    bundle,
    condition,
    deployment_object,
    exists,
    get_bundle,
    resource_condition,
    until_condition,
)
from smith.v1 import status_pb2, status_pb2_grpc
from smith_engine.planner import Reason, Verdict, VerdictState
from smith_kube import KubeClient
from support import config_map, eventually, resource

pytestmark = pytest.mark.controlplane


def report(read: Json, state: VerdictState, reason: Reason) -> status_pb2.ReportRequest:
    return status_pb2.ReportRequest(
        bundle=bundle_ref(read),
        previous_status_json=dump(read.get("status") or {}),
        verdicts=[verdict_to_proto(Verdict("cfg", state, reason))],
    )


def ready_count(namespace: str) -> float:
    labels = {"namespace": namespace, "name": "race", "type": "Ready", "reason": "AllResourcesReady"}
    return REGISTRY.get_sample_value("smith_bundle_transitions_total", labels) or 0.0


async def test_a_report_from_a_stale_read_tells_nothing_twice_and_loses_nothing(
    kube: KubeClient, namespace: str, smith_without_controller: Any
) -> None:
    await kube.create(bundle("race", namespace, resource("cfg", config_map("cfg", {"a": "1"}))))
    read = await get_bundle(kube, namespace, "race")  # both reconciles below read this version
    smith = smith_without_controller
    async with channel(f"127.0.0.1:{smith.status_port}", smith.trust.client(), "status") as ch:
        status = status_pb2_grpc.StatusStub(ch)
        first = await status.Report(report(read, VerdictState.READY, Reason.READY))
        assert first.changed
        stored = await get_bundle(kube, namespace, "race")
        assert first.resource_version == stored["metadata"]["resourceVersion"]
        assert condition(stored, "Ready")["status"] == "True"
        assert ready_count(namespace) == 1

        again = await status.Report(report(read, VerdictState.READY, Reason.READY))
        assert not again.changed, "the stored status already says so"
        assert ready_count(namespace) == 1

        news = await status.Report(report(read, VerdictState.IN_PROGRESS, Reason.WAITING))
        assert news.changed, "written over the newer version"
        stored = await get_bundle(kube, namespace, "race")
        assert condition(stored, "Ready")["status"] == "False"
        assert condition(stored, "InProgress")["status"] == "True"

    async def all_events_posted() -> bool:
        return REGISTRY.get_sample_value("smith_events_pending") == 0 and bool(await reasons(kube, namespace))

    await eventually(all_events_posted, what="the Events to be posted")
    assert (await reasons(kube, namespace)).count("BundleReady") == 1


async def reasons(kube: KubeClient, namespace: str) -> list[str]:
    return [e["reason"] for e in (await kube.list("v1", "Event", namespace))["items"]]


async def test_what_a_pass_did_while_the_status_service_was_down_is_told_once_it_is_back(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    """The objects are made, the report does not get through: the next pass finds them unchanged, and
    its report still tells that they were created (the Events are not lost)."""
    old = smith.servers[1]
    await old.stop(grace=None)
    try:
        await kube.create(bundle("told", namespace, resource("cfg", config_map("cfg", {"a": "1"}))))

        async def made() -> bool:
            return await exists(kube, "v1", "ConfigMap", "cfg", namespace)

        await eventually(made, what="the ConfigMap")
    finally:
        server, _ = await smith.serve(
            "smith_status",
            [StatusServicer(smith.kube).registration()],
            address=f"127.0.0.1:{smith.status_port}",
        )
        smith.servers[1] = server
    await until_condition(kube, namespace, "told", "Ready", within=60)

    async def created() -> bool:
        return "Created" in await reasons(kube, namespace)

    await eventually(created, what="the Created event of the ConfigMap")


async def test_a_report_told_late_says_how_the_objects_are_now_not_how_they_were_made(
    kube: KubeClient, namespace: str, smith_without_resync: Any
) -> None:
    """A Deployment made while the status service is down is in progress then; it is Available by the
    time the service is back: the late report tells its creation and says it is Ready (no resync comes
    to correct a report that said otherwise)."""
    smith = smith_without_resync
    old = smith.servers[1]
    await old.stop(grace=None)
    try:
        await kube.create(bundle("late", namespace, resource("web", deployment_object("web", replicas=1))))

        async def made() -> bool:
            return await exists(kube, "apps/v1", "Deployment", "web", namespace)

        await eventually(made, what="the Deployment")
        available = dict.fromkeys(("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), 1)
        status = {"status": {"observedGeneration": 1, **available}}
        await kube.patch("apps/v1", "Deployment", "web", status, namespace=namespace, subresource="status")
    finally:
        server, _ = await smith.serve(
            "smith_status",
            [StatusServicer(smith.kube).registration()],
            address=f"127.0.0.1:{smith.status_port}",
        )
        smith.servers[1] = server
    done = await until_condition(kube, namespace, "late", "Ready", within=60)
    assert resource_condition(done, "web", "Ready")["status"] == "True"

    async def created() -> bool:
        return "Created" in await reasons(kube, namespace)

    await eventually(created, what="the Created event of the Deployment")
