"""Stand-ins for the controllers a real cluster would run beside Smith, so whole flows run on the
local control plane: a Service Catalog broker (instances provisioned or failed, bindings with
their credential Secrets) and the controllers of the sample custom resources (Sleeper, Postgresql).

`python tests/fakes.py` runs them all against $KUBECONFIG (used by `make run`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smith_kube import (
    ApiError,
    ConflictError,
    KubeClient,
    KubeConfig,
    NotFoundError,
    UnservedKindError,
    WatchEvent,
)
from smith_kube.informer import run_informer

SC = "servicecatalog.k8s.io/v1beta1"
Json = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, status: bool, reason: str, message: str) -> Json:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }


def is_ready(obj: Json) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def _class(name: str) -> Json:
    spec = {"externalName": name, "clusterServiceBrokerName": "fake"}
    return {
        "apiVersion": SC,
        "kind": "ClusterServiceClass",
        "metadata": {"name": f"class-{name}"},
        "spec": spec,
    }


def _plan(service: str, plan: str, schema: Json) -> Json:
    return {
        "apiVersion": SC,
        "kind": "ClusterServicePlan",
        "metadata": {"name": f"plan-{service}-{plan}"},
        "spec": {
            "externalName": plan,
            "clusterServiceBrokerName": "fake",
            "clusterServiceClassRef": {"name": f"class-{service}"},
            "instanceCreateParameterSchema": schema,
        },
    }


QUEUE_PARAMETERS: Json = {
    "type": "object",
    "properties": {
        "retention": {"type": "integer", "minimum": 1, "description": "days"},
        "fail": {"type": "string", "description": "make provisioning fail, saying why (tests)"},
    },
}
CATALOG = [_class("queue"), _plan("queue", "standard", QUEUE_PARAMETERS)]


async def informing(
    kube: KubeClient,
    api_version: str,
    kind: str,
    *,
    on_list: Callable[[Any], None],
    on_event: Callable[[WatchEvent], None],
) -> None:
    """run_informer, once the kind is served: its CRD may not be installed, or not established, yet."""
    while True:
        try:
            await run_informer(kube, api_version, kind, on_list=on_list, on_event=on_event)
        except UnservedKindError:
            await asyncio.sleep(1)
            kube.forget()


class Broker:
    """Provisions every ServiceInstance (or fails it when `spec.parameters.fail` says why) and, once its
    instance is Ready, writes each ServiceBinding's Secret and marks the binding Ready."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def publish_catalog(self) -> None:
        """Its classes and plans, as a broker's catalog is published; the CRDs may have just been
        installed (not served yet, or their storage initializing): try again until they are."""
        for obj in CATALOG:
            while True:
                try:
                    await self.kube.apply(obj, field_manager="fake-broker")
                    break
                except (ApiError, UnservedKindError) as e:
                    if isinstance(e, ApiError) and not e.retriable:
                        raise
                    await asyncio.sleep(0.5)

    async def run(self) -> None:
        await asyncio.gather(
            self.publish_catalog(),
            informing(self.kube, SC, "ServiceInstance", on_list=self._instances, on_event=self._instance),
            informing(self.kube, SC, "ServiceBinding", on_list=self._bindings, on_event=self._binding),
        )

    def _instances(self, items: Any) -> None:
        for item in items:
            self._instance(WatchEvent(type="ADDED", object=item))

    def _bindings(self, items: Any) -> None:
        for item in items:
            self._binding(WatchEvent(type="ADDED", object=item))

    def _instance(self, event: WatchEvent) -> None:
        obj = event.object
        meta, status = obj["metadata"], obj.get("status") or {}
        if event.type != "DELETED" and status.get("observedGeneration") != meta.get("generation"):
            self._spawn(self._provision(obj))

    def _binding(self, event: WatchEvent) -> None:
        if event.type != "DELETED" and not is_ready(event.object):
            self._spawn(self._bind(event.object))

    async def _provision(self, instance: Json) -> None:
        meta = instance["metadata"]
        parameters = (instance.get("spec") or {}).get("parameters") or {}
        if reason := parameters.get("fail"):
            message = f"broker: {reason}"
            conditions = [
                condition("Ready", False, "ProvisionCallFailed", message),
                condition("Failed", True, "ProvisionCallFailed", message),
            ]
        else:
            conditions = [condition("Ready", True, "ProvisionedSuccessfully", "the instance was provisioned")]
        status = {
            "observedGeneration": meta["generation"],
            "conditions": conditions,
            "provisionedParameters": parameters,
        }
        with contextlib.suppress(NotFoundError):
            await self.kube.patch(
                SC,
                "ServiceInstance",
                meta["name"],
                {"status": status},
                namespace=meta["namespace"],
                subresource="status",
            )
        if not reason:  # bindings that waited for this instance
            bindings = await self.kube.list(SC, "ServiceBinding", meta["namespace"])
            for binding in bindings.get("items", []):
                if (binding.get("spec") or {}).get("instanceRef", {}).get("name") == meta["name"]:
                    self._spawn(self._bind({**binding, "apiVersion": SC, "kind": "ServiceBinding"}))

    async def _bind(self, binding: Json) -> None:
        meta, spec = binding["metadata"], binding.get("spec") or {}
        try:
            instance = await self.kube.get(
                SC, "ServiceInstance", spec["instanceRef"]["name"], meta["namespace"]
            )
        except NotFoundError:
            return
        if not is_ready(instance):
            return
        name = instance["metadata"]["name"]
        credentials = {
            "url": f"https://{name}.queue.example.com",
            "region": "ap-southeast-2",
            "password": "s3cr3t",
        }
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": spec.get("secretName") or meta["name"], "namespace": meta["namespace"]},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in credentials.items()},
        }
        await self.kube.apply(secret, field_manager="fake-broker")
        ready = {"status": {"conditions": [condition("Ready", True, "InjectedBindResult", "bound")]}}
        with contextlib.suppress(NotFoundError):
            await self.kube.patch(
                SC, "ServiceBinding", meta["name"], ready, namespace=meta["namespace"], subresource="status"
            )


class SampleControllers:
    """The sample CRDs' controllers: a Sleeper wakes after `spec.sleepFor` seconds; a
    PostgresqlResource gets a `status.host`."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await asyncio.gather(
            self._follow("crd.atlassian.com/v1", "Sleeper", self._wake),
            self._follow("smith.atlassian.com/v1", "PostgresqlResource", self._host),
        )

    async def _follow(self, api_version: str, kind: str, act: Any) -> None:
        def on_event(event: WatchEvent) -> None:
            if event.type != "DELETED" and not (event.object.get("status") or {}):
                task = asyncio.create_task(act(event.object))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        def on_list(items: Any) -> None:
            for item in items:
                on_event(WatchEvent("ADDED", item))

        await informing(self.kube, api_version, kind, on_list=on_list, on_event=on_event)

    async def _status(self, obj: Json, status: Json) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.kube.patch(
                obj["apiVersion"],
                obj["kind"],
                meta["name"],
                {"status": status},
                namespace=meta["namespace"],
                subresource="status",
            )

    async def _wake(self, sleeper: Json) -> None:
        spec = sleeper.get("spec") or {}
        await asyncio.sleep(float(spec.get("sleepFor", 0)))
        await self._status(sleeper, {"state": "Awake", "message": spec.get("wakeupMessage", "")})

    async def _host(self, db: Json) -> None:
        await self._status(db, {"host": f"{db['metadata']['name']}.postgres.internal", "state": "Ready"})


async def main() -> None:
    async with KubeClient(KubeConfig.load()) as kube:
        await asyncio.gather(Broker(kube).run(), SampleControllers(kube).run())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.exit(0)
