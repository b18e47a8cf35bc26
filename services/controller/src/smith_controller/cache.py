"""The objects Smith manages, as watched from the API server: one list+watch per kind, selected by the
BundleName label, indexed by Bundle. A reconcile reads its children here, never from the API server.

With several controller replicas, each keeps only the children of the Bundles in its share: the API
cannot select objects by a hash of their Bundle's name, so every replica receives every event, but
what is not its own is not kept. When its share grows (a replica left), it lists every kind again."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smith_controller.tasks import cancel_and_wait
from smith_engine.codec import dumps, loads
from smith_engine.limits import within_reach
from smith_engine.model import BUNDLE_NAME_LABEL, GroupKind, JSONObject, ObjectKey
from smith_engine.status import ActionResult
from smith_kube import KubeClient, KubeError, UnservedKindError, WatchEvent
from smith_kube.backoff import backoff
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller.cache")

BundleKey = tuple[str, str]  # (namespace, bundle name)
Version = tuple[ObjectKey, str]  # an object, and a resourceVersion of it
Notify = Callable[[BundleKey], None]
Changed = Callable[[BundleKey, Version | None], None]  # a Bundle's object changed (to that version) or went
Keep = Callable[[BundleKey], bool]


def bundle_of(obj: JSONObject) -> BundleKey | None:
    """The Bundle the object's label names; its namespace and name interned (shared by every object of
    the Bundle that the cache keeps, not a copy each)."""
    meta = obj.get("metadata", {})
    name = (meta.get("labels") or {}).get(BUNDLE_NAME_LABEL)
    return (sys.intern(str(meta.get("namespace", ""))), sys.intern(str(name))) if name else None


@dataclass(frozen=True, slots=True)
class Child:
    """An object as the controller keeps it: compact JSON (about a fifth of its size as Python dicts; it
    travels to the services as JSON anyway), and what is looked at without reading it."""

    key: ObjectKey
    api_version: str
    bundle: BundleKey | None  # the Bundle its label names
    json: bytes

    @classmethod
    def of(cls, obj: JSONObject, kind: GroupKind | None = None) -> Child:
        """`obj` without its managedFields (most of its size; nothing Smith decides depends on them).
        `kind`, when the caller knows it, is shared rather than made again for every object."""
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        kept = {**obj, "metadata": meta}
        key = ObjectKey(kind, str(meta.get("name", ""))) if kind is not None else ObjectKey.of(obj)
        return cls(key, sys.intern(str(obj.get("apiVersion", ""))), bundle_of(obj), dumps(kept))

    def object(self) -> JSONObject:
        loaded: JSONObject = loads(self.json)
        return loaded


class ChildCache:
    def __init__(
        self, kube: KubeClient, notify: Changed, *, namespace: str | None = None, keep: Keep | None = None
    ) -> None:
        """`namespace` limits the watches to one namespace (a single-namespace install); `keep` says
        which Bundles' children to keep (all when not given; see `reshare`)."""
        self.kube = kube
        self.notify = notify
        self.namespace = namespace
        self.keep: Keep = keep or (lambda _: True)
        self._objects: dict[tuple[GroupKind, str], Child] = {}  # (kind, uid) -> object
        self._by_bundle: dict[BundleKey, set[tuple[GroupKind, str]]] = defaultdict(set)
        self._watches: dict[GroupKind, asyncio.Task[None]] = {}
        self._synced: dict[GroupKind, asyncio.Event] = {}
        self._listing: dict[GroupKind, set[str]] = {}  # uids of a list in progress, by kind

    def __len__(self) -> int:
        return len(self._objects)

    def children(self, key: BundleKey) -> list[Child]:
        return [self._objects[k] for k in sorted(self._by_bundle.get(key, ()))]

    def watched(self) -> frozenset[GroupKind]:
        return frozenset(self._watches)

    def is_synced(self) -> bool:
        """True when every watched kind has been listed once."""
        return all(e.is_set() for e in self._synced.values())

    async def synced(self) -> None:
        """Wait until every watched kind has been listed once."""
        await asyncio.gather(*(e.wait() for e in self._synced.values()))

    def watch(self, kinds: frozenset[GroupKind]) -> None:
        """Watch exactly `kinds`: start the new ones, stop the ones no executor serves any more."""
        for kind in kinds - self._watches.keys():
            self._synced[kind] = asyncio.Event()
            self._watches[kind] = asyncio.create_task(self._run(kind), name=f"watch {kind}")
        for kind in self._watches.keys() - kinds:
            self._watches.pop(kind).cancel()
            self._synced.pop(kind).set()  # nothing to wait for any more

    def reshare(self, *, grew: bool) -> None:
        """`keep` answers differently now: let go of what is no longer kept, and when it keeps more
        (`grew`), list every kind again (the watches start over; reconciles wait for the lists)."""
        for kind, uid in [k for k, c in self._objects.items() if c.bundle and not self.keep(c.bundle)]:
            self._forget(kind, uid)
        if grew:
            for kind, task in self._watches.items():
                task.cancel()
                self._synced[kind].clear()  # the same event: whoever waits on it waits for the new list
                self._watches[kind] = asyncio.create_task(self._run(kind), name=f"watch {kind}")

    async def stop(self) -> None:
        tasks = list(self._watches.values())
        self._watches.clear()
        await cancel_and_wait(tasks)

    # --- one kind ---------------------------------------------------------------------------------

    def _put(self, kind: GroupKind, obj: JSONObject) -> None:
        uid, key = obj["metadata"]["uid"], bundle_of(obj)
        if key and not self.keep(key):
            self._drop(kind, uid)  # it may have been kept under the Bundle its label named before
            return
        child, ident = Child.of(obj, kind), (kind, uid)  # one tuple for both indexes
        old = self._objects.get(ident)
        if old is not None and old.json == child.json:
            return  # a list again (after a watch failed, or of a share grown) of what is kept: no news
        old_key, new_key = (old.bundle if old else None), child.bundle
        self._objects[ident] = child
        if old_key and old_key != new_key:
            self._by_bundle[old_key].discard(ident)
            self.notify(old_key, None)
        if new_key:
            self._by_bundle[new_key].add(ident)
            self.notify(new_key, (child.key, str(obj["metadata"].get("resourceVersion", ""))))

    def _drop(self, kind: GroupKind, uid: str) -> None:
        if (key := self._forget(kind, uid)) is not None:
            self.notify(key, None)

    def _forget(self, kind: GroupKind, uid: str) -> BundleKey | None:
        """Remove the object; the Bundle it belonged to."""
        old = self._objects.pop((kind, uid), None)
        if old is None or (key := old.bundle) is None:
            return None
        kept = self._by_bundle[key]
        kept.discard((kind, uid))
        if not kept:
            del self._by_bundle[key]
        return key

    async def _run(self, kind: GroupKind) -> None:
        waits = backoff(1.0, 60.0)
        while True:
            try:
                api_version = await self.kube.preferred_version(kind.group)
                await self.kube.resource(api_version, kind.kind)
            except UnservedKindError:
                # An executor announced a kind the API server does not serve (yet: a CRD that is
                # still being established, or a retired one). Nothing to wait for meanwhile.
                self._synced[kind].set()
                delay = next(waits)
                log.info("%s is not served by the API server; looking again in %.0fs", kind, delay)
                await asyncio.sleep(delay)
                self.kube.forget()
                continue
            except KubeError as e:
                # Discovery failed (the API server failing, throttling or unreachable): ask again. The
                # kind is not listed yet, so reconciles wait for it, as at start.
                delay = next(waits)
                log.warning("discovery of %s failed (%s); again in %.0fs", kind, e, delay)
                await asyncio.sleep(delay)
                continue
            await run_informer(
                self.kube,
                api_version,
                kind.kind,
                on_page=lambda items, first, last: self._listed_page(kind, items, first, last),
                on_event=lambda event: self._changed(kind, event),
                label_selector=BUNDLE_NAME_LABEL,
                synced=self._synced[kind],
                namespace=self.namespace,
            )

    def _listed_page(self, kind: GroupKind, items: Sequence[JSONObject], first: bool, last: bool) -> None:
        """A page of a (re)list of `kind`: kept as it comes; after the last, what the list did not
        have is gone."""
        if first:
            self._listing[kind] = set()
        listed = self._listing[kind]
        for obj in items:
            listed.add(obj["metadata"]["uid"])
            self._put(kind, obj)
        if last:
            del self._listing[kind]
            for kind_, uid in [k for k in self._objects if k[0] == kind and k[1] not in listed]:
                self._drop(kind_, uid)

    def _changed(self, kind: GroupKind, event: WatchEvent) -> None:
        if event.type == "DELETED":
            self._drop(kind, event.object["metadata"]["uid"])
        else:
            self._put(kind, event.object)


@dataclass(slots=True)
class BundleState:
    """What the controller holds for one Bundle it knows."""

    kept: bytes  # the Bundle as JSON (see `kept`)
    # what a pass did that the status service was not told (it was down): told by the next report
    unreported: tuple[ActionResult, ...] = ()
    written_at: float | None = None  # when its status was last written (monotonic)
    changes: int = 0  # counts the changes that matter to its passes (see Controller.changed)
    settled: int | None = None  # `changes` when the last pass that left it converged began

    def unchanged_since_settled(self) -> bool:
        """Nothing it reads changed since a pass left it converged: a resync has nothing to do."""
        return self.settled == self.changes

    def window_left(self, window: float) -> float:
        """How long is left of the status window its last status write opened (0: none)."""
        if self.written_at is None:
            return 0.0
        left = self.written_at + window - time.monotonic()
        return left if left > 0.01 else 0.0  # a timer may fire a hair early: the window is over


def kept(bundle: JSONObject) -> bytes:
    """A Bundle as the controller keeps it: JSON, without managedFields (as its children: cache.Child),
    and no deeper than Smith's services carry (see limits.within_reach)."""
    return Child.of(within_reach(bundle)).json
