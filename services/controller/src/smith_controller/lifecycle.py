"""A Bundle's lifecycle around its passes: Smith's finalizer written onto a new Bundle, and a deleted
Bundle's teardown, wave by wave, before the finalizer is let go. The caller passes in its fence (how long
this replica may still act for the Bundle) and its ownership guard (checked right before a write)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from smith_wire.convert import action_from_proto, dump
from smith_wire.rpc import PLAN_DEADLINE

from smith.v1 import common_pb2, planner_pb2
from smith_controller.cache import BundleKey, Child, ChildCache
from smith_controller.clients import Fence, ServiceClients
from smith_engine.deletion import FINALIZER, ORPHAN_FINALIZER, kinds_made
from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_kube import KubeClient, KubeError, NotFoundError
from smith_kube.client import MERGE_PATCH

log = logging.getLogger("smith.controller")
tracer = trace.get_tracer("smith.controller")


class TeardownError(Exception):
    """A deletion of the teardown failed (retried after a back-off)."""


def finalizers_of(bundle: JSONObject) -> list[str]:
    return list(bundle["metadata"].get("finalizers") or [])


@dataclass
class Lifecycle:
    kube: KubeClient
    clients: ServiceClients
    cache: ChildCache

    async def tear_down(
        self, key: BundleKey, bundle: JSONObject, *, fence: Fence | None, guard: Callable[[], None]
    ) -> None:
        """A deleted Bundle with Smith's finalizer: delete its objects dependents first, wave by wave (each
        wave's watch events bring the next), then let the Bundle go. With the `orphan` finalizer
        (`kubectl delete --cascade=orphan`) its objects stay: the garbage collector unlinks them."""
        finalizers = finalizers_of(bundle)
        if FINALIZER not in finalizers:
            return
        if unwatched := kinds_made(bundle) - self.cache.watched():
            # Just started: not every executor is known yet. A routing change brings the Bundle back.
            log.info("teardown of %s/%s waits for watches of %s", *key, sorted(map(str, unwatched)))
            return
        await self.cache.synced()
        if ORPHAN_FINALIZER not in finalizers and not await teardown(
            self.clients, bundle, self.cache.children(key), fence=fence
        ):
            return
        guard()
        with contextlib.suppress(NotFoundError):  # gone already (its namespace deleted): nothing holds it
            await self._set_finalizers(bundle, [f for f in finalizers if f != FINALIZER])
        log.info("bundle %s/%s: objects deleted, finalizer removed", *key)

    async def finalize(self, key: BundleKey, bundle: JSONObject) -> JSONObject | None:
        """Write Smith's finalizer onto a new Bundle while its first pass goes on (a write on the Bundle
        costs as much as its status write, here 5-13 ms): the Bundle as written, or None when the write
        failed (the Bundle changed or went meanwhile: the pass ends unreported and the next one
        begins again from the Bundle as it is; what the pass made has the Bundle as its owner)."""
        try:
            return await self._set_finalizers(bundle, [*finalizers_of(bundle), FINALIZER])
        except KubeError as e:
            log.info("finalizer of %s/%s not written: %s (retrying)", *key, e)
            return None

    async def _set_finalizers(self, bundle: JSONObject, finalizers: list[str]) -> JSONObject:
        """Write the Bundle's finalizers, only over the version read (a ConflictError otherwise)."""
        meta = bundle["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        return await self.kube.patch(
            API_VERSION,
            BUNDLE_KIND,
            meta["name"],
            patch,
            namespace=meta["namespace"],
            content_type=MERGE_PATCH,
        )


async def teardown(
    clients: ServiceClients, bundle: JSONObject, children: Sequence[Child], *, fence: Fence | None = None
) -> bool:
    """One step of a deleted Bundle's teardown: delete the objects nothing else of it depends on (the
    next wave comes with the watch events of their going). True when none of its objects is left."""
    meta = bundle["metadata"]
    with tracer.start_as_current_span(f"teardown {meta['namespace']}/{meta['name']}") as span:
        span.set_attribute("smith.bundle", f"{meta['namespace']}/{meta['name']}")
        observed = [common_pb2.Observed(object_json=c.json) for c in children]
        request = planner_pb2.PlanRequest(bundle_json=dump(bundle), observed=observed)
        plan = await clients.planner.Plan(request, timeout=PLAN_DEADLINE)
        actions = [action_from_proto(a) for a in plan.actions]
        results = await clients.execute(bundle, actions, fence=fence)
        if failed := [r for r in results if not r.ok]:
            problems = "; ".join(f"{r.object.kind} {r.object.name}: {r.error_message}" for r in failed)
            raise TeardownError(f"could not delete {problems}")
        span.set_attribute("smith.finished", plan.finished)
        return plan.finished
