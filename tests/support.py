"""Builders shared by the tests: small bundles and observed objects, written the way users write them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import yaml
from prometheus_client.parser import text_string_to_metric_families
from smith_wire.rpc import Register

from smith.v1 import planner_pb2, planner_pb2_grpc
from smith_controlplane.objects import crd_object as crd_object  # re-exported for the tests
from smith_engine.changes import desired_hash
from smith_engine.model import BUNDLE_NAME_LABEL, Bundle, ObjectKey
from smith_engine.planner import Observed, desired_object, owner_reference
from smith_engine.readiness import READY, Readiness, in_progress
from smith_engine.validation import load_bundle

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "deploy" / "samples"
NAMESPACE = "team-a"
UID = "5f0c6f2e-0000-4000-8000-000000000001"


def config_map(name: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data or {})}


def service_instance(name: str, **parameters: Any) -> dict[str, Any]:
    """A ServiceInstance of the fake broker's `queue` class, plan `standard`."""
    return {
        "apiVersion": "servicecatalog.k8s.io/v1beta1",
        "kind": "ServiceInstance",
        "metadata": {"name": name},
        "spec": {
            "clusterServiceClassExternalName": "queue",
            "clusterServicePlanExternalName": "standard",
            "parameters": parameters,
        },
    }


def resource(
    name: str,
    obj: Mapping[str, Any] | None = None,
    *,
    depends_on: Sequence[str] = (),
    references: Sequence[Mapping[str, Any]] = (),
    wrapped: bool = True,
) -> dict[str, Any]:
    """A bundle resource; `wrapped` picks the later `spec.object` shape over the original `spec` one."""
    body = dict(obj if obj is not None else config_map(name))
    out: dict[str, Any] = {"name": name, "spec": {"object": body} if wrapped else body}
    if depends_on:
        out["dependsOn"] = list(depends_on)
    if references:
        out["references"] = [dict(r) for r in references]
    return out


def bundle_object(*resources: Mapping[str, Any], name: str = "b", generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "smith.atlassian.com/v1",
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": UID, "generation": generation},
        "spec": {"resources": list(resources)},
    }


def bundle(*resources: Mapping[str, Any], name: str = "b") -> Bundle:
    return load_bundle(bundle_object(*resources, name=name))


def observed(
    b: Bundle,
    obj: Mapping[str, Any],
    readiness: Readiness = READY,
    *,
    owned: bool = True,
    in_sync: bool = True,
    **fields: Any,
) -> Observed:
    """`obj` as the API server would hold it for bundle `b` (labelled and owned unless `owned=False`);
    unless `in_sync=False`, its executor knows it to match `obj` as Smith would apply it."""
    full: dict[str, Any] = {**obj, **fields}
    metadata = dict(full.get("metadata", {}))
    metadata.setdefault("namespace", b.namespace)
    metadata.setdefault("uid", f"uid-{metadata['name']}")
    if owned:
        metadata["labels"] = {**metadata.get("labels", {}), BUNDLE_NAME_LABEL: b.name}
        metadata["ownerReferences"] = [owner_reference(b)]
    full["metadata"] = metadata
    return Observed(
        object=full, readiness=readiness, in_sync_with=_desired_hash_of(b, obj) if in_sync else ""
    )


def _desired_hash_of(b: Bundle, obj: Mapping[str, Any]) -> str:
    """The desired hash an object is in sync with: its own when it is an object Smith applied (labelled),
    else that of its resource as Smith would apply it (for resources that reference nothing)."""
    if BUNDLE_NAME_LABEL in (obj.get("metadata", {}).get("labels") or {}):
        return desired_hash(obj)
    found = next((r for r in b.resources if r.key == ObjectKey.of(obj)), None)
    if found is None or any(r.carries_value for r in found.references):
        return desired_hash(obj)
    dependencies = [
        {**b.by_name[d].object, "metadata": {**b.by_name[d].object["metadata"], "uid": f"uid-{d}"}}
        for d in sorted(found.dependencies)
    ]
    return desired_hash(desired_object(b, found, {}, dependencies))


def waiting(message: str = "rolling out") -> Readiness:
    return in_progress(message)


def load_sample(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((SAMPLES / name).read_text())
    obj["metadata"].setdefault("namespace", NAMESPACE)
    obj["metadata"].setdefault("uid", UID)
    return obj


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 30, what: str = "condition"
) -> None:
    """Wait for a fact the API server (or a controller) reaches by itself; fail the test if it does not.

    Polling is right here: the test observes another process's state, which no event of ours signals.
    """
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - see above
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


async def metric(port: int, name: str) -> float:
    """The sum of a metric's samples (every label) on a service's /metrics port."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as answer:
        text = await answer.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


# --- gRPC servers for the plumbing's tests ---------------------------------------------------------


def serving(servicer: planner_pb2_grpc.PlannerServicer) -> Register:
    return lambda server: planner_pb2_grpc.add_PlannerServicer_to_server(servicer, server)


class CountingPlanner(planner_pb2_grpc.PlannerServicer):
    def __init__(self, name: str, calls: Counter[str]) -> None:
        self.name, self.calls = name, calls

    async def Plan(  # noqa: N802 - gRPC method name
        self, request: planner_pb2.PlanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> planner_pb2.PlanResponse:
        self.calls[self.name] += 1
        return planner_pb2.PlanResponse(finished=True)
