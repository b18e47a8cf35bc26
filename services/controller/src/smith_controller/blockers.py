"""Objects outside a Bundle that matter to it, which carry no Smith label and so are in no watch of the
child cache: an existing object Smith does not control that blocks a resource, and a ConfigMap or Secret
a Deployment or ServiceInstance of the Bundle reads (there or not yet). Each is watched alone, by name,
while it matters, and any change to it (its controller reference pointed at the Bundle, an edit, its
creation or deletion) marks the Bundles it matters to for a reconcile. Level-triggered: no polling."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable

from smith_controller.cache import BundleKey, Keep, Notify
from smith_controller.tasks import cancel_and_wait
from smith_engine.model import ObjectRef
from smith_kube import KubeClient, UnservedKindError
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller.blockers")
Target = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


class BlockerWatches:
    def __init__(self, kube: KubeClient, notify: Notify) -> None:
        self.kube = kube
        self.notify = notify
        self._tasks: dict[Target, asyncio.Task[None]] = {}
        self._ending: set[asyncio.Task[None]] = set()  # cancelled, not finished yet (closing a watch)
        self._bundles: dict[Target, set[BundleKey]] = defaultdict(set)
        self._by_bundle: dict[BundleKey, set[Target]] = {}

    def watched(self) -> frozenset[Target]:
        return frozenset(self._tasks)

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
        await cancel_and_wait(tasks)

    def _changed(self, target: Target) -> None:
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
                on_list=lambda _: self._changed(target),
                on_event=lambda _: self._changed(target),
                field_selector=f"metadata.name={name}",
                namespace=namespace or None,
            )
        except UnservedKindError:
            log.info("not watching %s %s/%s: the kind is not served", kind, namespace, name)
