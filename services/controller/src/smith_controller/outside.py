"""Objects outside a Bundle that matter to it, which carry no Smith label and so are in no watch of the
child cache: an existing object Smith does not control that blocks a resource, and a ConfigMap or Secret
a Deployment or ServiceInstance of the Bundle reads (there or not yet). Each is watched alone, by name,
while it matters, and any change to it (its controller reference pointed at the Bundle, an edit, its
creation or deletion) marks the Bundles it matters to for a reconcile. Level-triggered: no polling.

A pass reads what it needs of them (`read`): those ConfigMaps and Secrets (as their watches keep them;
read from the API only before a watch has told of one), the Secrets its ServiceBindings wrote, and the
Service Catalog's classes and plans for a Bundle with ServiceInstances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from smith_controller.cache import BundleKey, Child, Keep, Notify
from smith_controller.tasks import cancel_and_wait
from smith_engine.codec import loads
from smith_engine.limits import MAX_OUTSIDE
from smith_engine.model import GroupKind, JSONObject, ObjectRef, resource_object
from smith_engine.references import binding_secret_name
from smith_engine.servicecatalog import SERVICE_BINDING, SERVICE_INSTANCE
from smith_engine.workloads import config_sources, described_config, external_refs
from smith_kube import KubeClient, NotFoundError, UnservedKindError
from smith_kube.catalog import service_catalog
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller.outside")
Target = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
KEPT_KINDS = frozenset({("v1", "ConfigMap"), ("v1", "Secret")})  # what a pass reads (not what blocks it)


class OutsideWatches:
    def __init__(self, kube: KubeClient, notify: Notify) -> None:
        self.kube = kube
        self.notify = notify
        self._tasks: dict[Target, asyncio.Task[None]] = {}
        self._ending: set[asyncio.Task[None]] = set()  # cancelled, not finished yet (closing a watch)
        self._bundles: dict[Target, set[BundleKey]] = defaultdict(set)
        self._by_bundle: dict[BundleKey, set[Target]] = {}
        # ConfigMaps and Secrets as their watch last told, as compact JSON (see cache.Child; b"": not there)
        self._kept: dict[Target, bytes] = {}

    def watched(self) -> frozenset[Target]:
        return frozenset(self._tasks)

    def knows(self, ref: ObjectRef) -> bool:
        """Whether a live watch keeps the ConfigMap or Secret (as there, or as not there)."""
        target = (ref.api_version, ref.kind, ref.namespace, ref.name)
        task = self._tasks.get(target)
        return task is not None and not task.done() and target in self._kept

    def kept(self, ref: ObjectRef) -> tuple[bool, JSONObject | None]:
        """Whether a live watch has told of the ConfigMap or Secret yet, and the object as it told (None:
        not there). A watch that ended keeps nothing: the object is read from the API again."""
        target = (ref.api_version, ref.kind, ref.namespace, ref.name)
        task, kept = self._tasks.get(target), self._kept.get(target)
        if task is None or task.done() or kept is None:
            return False, None
        return True, loads(kept) if kept else None

    def set(self, bundle: BundleKey, blockers: Iterable[ObjectRef]) -> None:
        """The objects that block `bundle` now (none: stop watching for it)."""
        new = {(r.api_version, r.kind, r.namespace, r.name) for r in blockers}
        old = self._by_bundle.pop(bundle, set())
        if new:
            self._by_bundle[bundle] = new
        for target in new - old:
            self._bundles[target].add(bundle)
            if target not in self._tasks:
                self._tasks[target] = asyncio.create_task(self._watch(target), name=f"blocker {target}")
        for target in old - new:
            self._bundles[target].discard(bundle)
            if not self._bundles[target]:
                del self._bundles[target]
                self._kept.pop(target, None)
                if (task := self._tasks.pop(target, None)) is not None:
                    task.cancel()
                    self._ending.add(task)
                    task.add_done_callback(self._ending.discard)

    def retain(self, keep: Keep) -> None:
        """Stop watching for the Bundles `keep` lets go (another replica's now)."""
        for bundle in [b for b in self._by_bundle if not keep(b)]:
            self.set(bundle, ())

    async def stop(self) -> None:
        """Cancel every watch and wait until each has closed its connection, including the watches
        cancelled earlier that have not finished yet."""
        tasks = [*self._tasks.values(), *self._ending]
        self._tasks.clear()
        self._kept.clear()
        await cancel_and_wait(tasks)

    def _changed(self, target: Target, now: JSONObject | None) -> None:
        if target[:2] in KEPT_KINDS and self._tasks.get(target) is asyncio.current_task():
            self._kept[target] = b"" if now is None else Child.of(now).json
        for bundle in list(self._bundles.get(target, ())):
            self.notify(bundle)

    async def _watch(self, target: Target) -> None:
        api_version, kind, namespace, name = target
        try:
            # The first listing notifies too: the object may have changed between the reconcile that
            # found it in the way and this watch's start.
            await run_informer(
                self.kube,
                api_version,
                kind,
                on_list=lambda items: self._changed(target, items[0] if items else None),
                on_event=lambda e: self._changed(target, None if e.type == "DELETED" else e.object),
                field_selector=f"metadata.name={name}",
                namespace=namespace or None,
            )
        except UnservedKindError:
            log.info("not watching %s %s/%s: the kind is not served", kind, namespace, name)
        except Exception as e:  # (not a cancel): nothing kept is trusted after it
            log.error("watch of %s %s/%s ended: %s", kind, namespace, name, type(e).__name__)
            for bundle in list(self._bundles.get(target, ())):
                self.notify(bundle)  # read from the API by their next pass
        finally:
            if self._tasks.get(target) is asyncio.current_task():
                self._kept.pop(target, None)


async def read(
    kube: KubeClient,
    bundle: JSONObject,
    children: Sequence[Child],
    wanted: Sequence[ObjectRef],
    watches: OutsideWatches,
) -> list[JSONObject]:
    """What a pass of `bundle` reads from outside it (those that exist): `wanted` (its `sources`: as their
    watches keep them, read only when not watched yet), the Secrets its ServiceBindings wrote, the
    catalog's classes and plans."""
    written = await _binding_secrets(kube, children)  # read fresh: a kept copy of one may lag
    names = {o["metadata"]["name"] for o in written}
    rest = [r for r in wanted if not (r.kind == "Secret" and r.name in names)]
    return [*written, *await _config_objects(kube, rest, watches), *await _catalog(kube, bundle)]


def all_watched(
    bundle: JSONObject, children: Sequence[Child], sources: Sequence[ObjectRef], watches: OutsideWatches
) -> bool:
    """Whether a change to anything the Bundle reads from outside itself comes as an event: its
    `sources` are kept by live watches, and it has no Service Catalog objects, in its spec or among its
    objects (a plugin's: its passes read their bindings' Secrets and the catalog's plans afresh)."""
    catalog = {SERVICE_INSTANCE, SERVICE_BINDING}
    if _kinds(bundle) & catalog or any(c.key.group_kind in catalog for c in children):
        return False
    return all(watches.knows(ref) for ref in sources)


def sources(bundle: JSONObject, children: Sequence[Child]) -> list[ObjectRef]:
    """The objects its resources name with `externalRef`, and the ConfigMaps and Secrets the Bundle's
    objects read that are not the Bundle's own: given to the planner, and watched by name (a change
    re-runs the Bundle; one not there yet is watched for)."""
    read = config_sources(bundle)
    if len(read - described_config(bundle)) > MAX_OUTSIDE:
        return []  # the planner refuses the Bundle (see workloads.outside_sources): none is read or watched
    namespace = bundle["metadata"]["namespace"]
    own = {(c.key.group_kind.kind, c.key.name) for c in children if c.api_version == "v1"}
    sources = sorted(read - own)[:MAX_OUTSIDE]  # (the spec's own yet to be made too)
    named = [ObjectRef(a, k, namespace, n) for a, k, n in external_refs(bundle)]  # externalRef
    return [*named, *(ObjectRef("v1", k, namespace, n) for k, n in sources)][:MAX_OUTSIDE]


async def _config_objects(
    kube: KubeClient, sources: Sequence[ObjectRef], watches: OutsideWatches
) -> list[JSONObject]:
    """The ConfigMaps and Secrets outside the Bundle that its objects read (those that exist)."""
    found: list[JSONObject] = []
    for ref in sources:
        known, kept = watches.kept(ref)
        if known:
            found += [kept] if kept is not None else []
            continue
        with contextlib.suppress(NotFoundError):
            found.append(await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace))
    return found


async def _catalog(kube: KubeClient, bundle: JSONObject) -> list[JSONObject]:
    """The Service Catalog's classes and plans, for a Bundle with ServiceInstances (their parameters
    are checked against the plan's schema before anything is created); none when the catalog is not
    installed or not readable."""
    found: list[JSONObject] = [*await service_catalog(kube)] if _reads_catalog(bundle) else []
    return found


def _reads_catalog(bundle: JSONObject) -> bool:
    return SERVICE_INSTANCE in _kinds(bundle)


def _kinds(bundle: JSONObject) -> set[GroupKind]:
    objects = (resource_object(r.get("spec")) for r in _resources(bundle))
    return {GroupKind.of(o) for o in objects if isinstance(o, dict)}


async def _binding_secrets(kube: KubeClient, children: Sequence[Child]) -> list[JSONObject]:
    """The Secrets the Bundle's ServiceBindings wrote (read when needed: they carry no Smith label)."""
    found: list[JSONObject] = []
    bindings = (c.object() for c in children if c.key.group_kind == SERVICE_BINDING)
    for binding in bindings:
        with contextlib.suppress(NotFoundError):
            found.append(
                await kube.get("v1", "Secret", binding_secret_name(binding), binding["metadata"]["namespace"])
            )
    return found


def _resources(bundle: JSONObject) -> list[Any]:
    resources = (bundle.get("spec") or {}).get("resources") or []
    return [r for r in resources if isinstance(r, dict)]
