"""Objects outside a Bundle that matter to it, which carry no Smith label and so are in no watch of the
child cache: an existing object Smith does not control that blocks a resource, a ConfigMap or Secret a
Deployment or ServiceInstance of the Bundle reads (there or not yet), and an object a resource names
with `externalRef` (read only where the Bundle's ServiceAccount may: `Access`). Each is watched alone,
by name, while it matters, and any change to it (its controller reference pointed at the Bundle, an edit, its
creation or deletion) marks the Bundles it matters to for a reconcile. Level-triggered: no polling.

A pass reads what it needs of them (`read`): those ConfigMaps and Secrets (as their watches keep them;
read from the API only before a watch has told of one), the Secrets its ServiceBindings wrote, and the
Service Catalog's classes and plans for a Bundle with ServiceInstances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

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
from smith_kube.reviews import may, service_account_user

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


@dataclass(frozen=True)
class Read:
    """What a pass reads from outside its Bundle: the objects (those that exist), and the externalRefs
    its ServiceAccount may not read (each a stub of its identity, and why)."""

    objects: list[JSONObject]
    forbidden: list[tuple[JSONObject, str]] = field(default_factory=list)


async def read(
    kube: KubeClient,
    bundle: JSONObject,
    children: Sequence[Child],
    wanted: Sequence[ObjectRef],
    watches: OutsideWatches,
    access: Access | None = None,
) -> Read:
    """What a pass of `bundle` reads from outside it (those that exist): `wanted` (its `sources`: as their
    watches keep them, read only when not watched yet; an externalRef only when `access` says the
    Bundle's ServiceAccount may read it), the Secrets its ServiceBindings wrote, the catalog's classes and
    plans."""
    forbidden: list[tuple[JSONObject, str]] = []
    external = set(external_refs(bundle))
    for ref in [r for r in wanted if (r.api_version, r.kind, r.name) in external]:
        problem = await (access.problem(bundle, ref) if access is not None else _namespaced(kube, ref))
        if problem is not None:
            meta = {"name": ref.name, "namespace": ref.namespace}
            forbidden.append(({"apiVersion": ref.api_version, "kind": ref.kind, "metadata": meta}, problem))
    refused = {(o["kind"], o["metadata"]["name"]) for o, _ in forbidden}
    written = await _binding_secrets(kube, children)  # read fresh: a kept copy of one may lag
    written = [o for o in written if ("Secret", o["metadata"]["name"]) not in refused]
    names = {o["metadata"]["name"] for o in written}
    rest = [
        r for r in wanted if (r.kind, r.name) not in refused and not (r.kind == "Secret" and r.name in names)
    ]
    objects = [*written, *await _config_objects(kube, rest, watches), *await _catalog(kube, bundle)]
    return Read(objects, forbidden)


async def _namespaced(kube: KubeClient, ref: ObjectRef) -> str | None:
    """Why an externalRef cannot name `ref`: its kind is not namespaced (an externalRef names an object
    of its Bundle's namespace); None when it can, or when the kind is not served (then it is not there)."""
    try:
        info = await kube.resource(ref.api_version, ref.kind)
    except UnservedKindError:
        return None
    if info.namespaced:
        return None
    return f"{ref.kind} is not namespaced: an externalRef names an object of its Bundle's namespace"


ACCESS_SECONDS: Final = 30.0  # how long an answer of the API server's authorizers is kept


class Access:
    """What a Bundle's ServiceAccount may read (SubjectAccessReview), asked before Smith reads an object
    it names with `externalRef` for it: Smith reads with its own rights, which must not become the
    author's. A Bundle acts as its `spec.serviceAccountName`, else `default_account`
    (SMITH_DEFAULT_SERVICE_ACCOUNT, the multi-tenant install's), where the executors may impersonate it;
    with neither it acts with the executors' own rights, as its writes do, and only the kind is checked
    (namespaced). Answers are kept ACCESS_SECONDS."""

    def __init__(self, kube: KubeClient, default_account: str, impersonator: str) -> None:
        self.kube = kube
        self.default_account = default_account
        # who acts as a Bundle's account: executor-core's ServiceAccount (`namespace:name`), whose right
        # to impersonate it there a namespace grants
        namespace, _, name = impersonator.partition(":")
        self.impersonator = service_account_user(namespace, name)
        self._answers: dict[tuple[str, ...], tuple[float, bool]] = {}

    async def problem(self, bundle: JSONObject, ref: ObjectRef) -> str | None:
        """Why the Bundle may not read `ref`, or None when it may: a kind that is not namespaced; an
        account the executors may not act as there (`impersonator`); an account that may not get it."""
        if (problem := await _namespaced(self.kube, ref)) is not None:
            return problem
        spec = bundle.get("spec") if isinstance(bundle.get("spec"), dict) else {}
        account = str((spec or {}).get("serviceAccountName") or self.default_account)
        if not account:
            return None
        user, groups = service_account_user(ref.namespace, account)
        account_ref = ObjectRef("v1", "ServiceAccount", ref.namespace, account)
        try:
            if not await self._may(self.impersonator, "impersonate", account_ref):
                return f"Smith may not act as {user}: its namespace has not let the executors impersonate it"
            if not await self._may((user, groups), "get", ref):
                reason = "an externalRef is read with the Bundle's rights"
                return f"{user} may not get {ref.kind} {ref.name}: {reason}"
        except UnservedKindError:
            return None  # nothing to read: the planner says it is not there
        return None

    async def _may(self, who: tuple[str, Sequence[str]], verb: str, ref: ObjectRef) -> bool:
        key = (who[0], verb, ref.api_version, ref.kind, ref.namespace, ref.name)
        now = time.monotonic()
        if (known := self._answers.get(key)) is None or now - known[0] > ACCESS_SECONDS:
            allowed = await may(
                self.kube,
                who[0],
                who[1],
                verb=verb,
                api_version=ref.api_version,
                kind=ref.kind,
                namespace=ref.namespace,
                name=ref.name,
            )
            if len(self._answers) > 10_000:
                self._answers.clear()
            known = self._answers[key] = (now, allowed)
        return known[1]


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
        with contextlib.suppress(NotFoundError, UnservedKindError):  # not there (yet), as far as a pass knows
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
