"""An executor announces itself with an `Executor` resource: its gRPC endpoint, the kinds it serves,
whether it is a fallback, and a heartbeat; a plugin with a `Plugin` resource: its endpoint, what it
makes, its schema, and a heartbeat. The controller routes by these, so a new or upgraded executor or
plugin needs no restart elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from smith_engine.model import API_VERSION, GroupKind
from smith_engine.routing import ExecutorInfo, RoutingTable
from smith_engine.times import rfc3339
from smith_kube import ApiError, KubeClient, KubeError, TransportError
from smith_kube.backoff import backoff

log = logging.getLogger("smith.executor.registration")
EXECUTOR_KIND = "Executor"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_NAMESPACE = "smith-system"
HEARTBEAT_SECONDS = float(os.environ.get("SMITH_HEARTBEAT_SECONDS", "300"))


def smith_namespace() -> str:
    return os.environ.get("SMITH_NAMESPACE", DEFAULT_NAMESPACE)


def executor_object(
    *, name: str, namespace: str, endpoint: str, kinds: Sequence[GroupKind], fallback: bool = False
) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": EXECUTOR_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "endpoint": endpoint,
            "kinds": [{"group": k.group, "kind": k.kind} for k in sorted(kinds)],
            "fallback": fallback,
        },
    }


async def publish(
    kube: KubeClient, *, name: str, endpoint: str, kinds: Sequence[GroupKind], fallback: bool = False
) -> None:
    """Create or update this executor's Executor resource and stamp its heartbeat."""
    namespace = smith_namespace()
    body = executor_object(name=name, namespace=namespace, endpoint=endpoint, kinds=kinds, fallback=fallback)
    await publish_object(kube, body)
    try:
        await tell_claims(kube, name=name, namespace=namespace)
    except KubeError as e:  # told again at the next publish
        log.warning("could not tell whether executor %s's kinds are routed to it: %s", name, e)


async def tell_claims(kube: KubeClient, *, name: str, namespace: str) -> dict[GroupKind, str]:
    """Say on this executor's own registration whether the controller routes its kinds to it: a kind
    another executor registered first serves stays with that one (smith_engine.routing), and is named in
    the condition KindsAccepted=False (and logged). Returns those kinds, by their executor."""
    table = RoutingTable()
    for item in (await kube.list(API_VERSION, EXECUTOR_KIND, namespace))["items"]:
        table.update(ExecutorInfo.of(item))
    refused = table.refused(name)
    taken = ", ".join(f"{k} (served by executor {owner!r})" for k, owner in refused.items())
    if refused:
        log.error("executor %s: kinds other executors serve are not routed here: %s", name, taken)
    condition = {
        "type": "KindsAccepted",
        "status": "False" if refused else "True",
        "reason": "KindClaimed" if refused else "Accepted",
        "message": f"served by executors registered first: {taken}"
        if refused
        else "every kind is routed here",
        "lastTransitionTime": rfc3339(datetime.now(UTC)),
    }
    status = {"status": {"conditions": [condition]}}
    await kube.patch(API_VERSION, EXECUTOR_KIND, name, status, namespace=namespace, subresource="status")
    return refused


async def publish_object(kube: KubeClient, body: dict[str, Any]) -> None:
    """Create or update a registration (an Executor or a Plugin resource) and stamp its heartbeat. The
    API server failing or unreachable for a while (5xx, 429, a reset) is waited out with back-off (up
    to 30 s between tries); a refusal (403, 422) is an error."""
    meta = body["metadata"]
    for delay in backoff():
        try:
            await kube.apply(body, field_manager=f"smith-{str(body['kind']).lower()}-{meta['name']}")
            await heartbeat(kube, name=meta["name"], namespace=meta["namespace"], kind=str(body["kind"]))
            return
        except ApiError as e:
            if not e.retriable:
                raise
            problem = str(e)
        except TransportError as e:
            problem = str(e)
        log.warning(
            "could not publish %s %s (again in %.0f s): %s", body["kind"], meta["name"], delay, problem
        )
        await asyncio.sleep(delay)


async def heartbeat(kube: KubeClient, *, name: str, namespace: str, kind: str = EXECUTOR_KIND) -> None:
    status = {"status": {"heartbeatTime": rfc3339(datetime.now(UTC))}}
    await kube.patch(API_VERSION, kind, name, status, namespace=namespace, subresource="status")


async def keep_alive(kube: KubeClient, *, name: str, kind: str = EXECUTOR_KIND) -> None:
    """Stamp the heartbeat every $SMITH_HEARTBEAT_SECONDS (default 5 minutes) until cancelled."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(Exception):
            await heartbeat(kube, name=name, namespace=smith_namespace(), kind=kind)


async def withdraw(
    kube: KubeClient,
    *,
    name: str,
    kind: str = EXECUTOR_KIND,
    service: str | None = None,
    pod: str | None = None,
) -> bool:
    """Remove this registration on a clean shutdown, so nothing is routed to it; True when removed.
    Replicas behind one Service ($SMITH_SERVICE) share one registration: it stays while another pod
    ($HOSTNAME is this one) is ready in the Service's EndpointSlices."""
    service = os.environ.get("SMITH_SERVICE", "") if service is None else service
    pod = os.environ.get("HOSTNAME", "") if pod is None else pod
    with contextlib.suppress(Exception):
        if service:
            selector = f"{SERVICE_NAME_LABEL}={service}"
            slices = await kube.list(
                "discovery.k8s.io/v1", "EndpointSlice", smith_namespace(), label_selector=selector
            )
            if served_elsewhere(slices["items"], pod):
                return False
        await kube.delete(API_VERSION, kind, name, namespace=smith_namespace())
        return True
    return False


def served_elsewhere(slices: Sequence[Mapping[str, Any]], pod: str) -> bool:
    """A pod other than `pod` is ready in these EndpointSlices (an unknown readiness counts as ready,
    as the API defines it)."""
    return any(
        (endpoint.get("conditions") or {}).get("ready") is not False
        and (endpoint.get("targetRef") or {}).get("name") != pod
        for s in slices
        for endpoint in s.get("endpoints") or []
    )
