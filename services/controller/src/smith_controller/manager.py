"""The manager: the controller's informers (Bundles, Executors, Plugins; the Bundles' objects through the
child cache, objects outside them through outside.py), the routing table, the membership glue, the
resync, and the work queue's worker (`_work`: one Bundle's pass, or its teardown). Each change marks the
Bundles it concerns for a reconcile. kopf runs the process's lifecycle only (startup, cleanup, and the
credentials of its login handler): it watches nothing (`run`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import kopf

from smith_controller import outside
from smith_controller.cache import BundleKey, BundleState, ChildCache, Version, kept
from smith_controller.clients import Fence, ServiceClients, ShareLostError
from smith_controller.echoes import Echoes
from smith_controller.handover import GoSmithLock
from smith_controller.lifecycle import Lifecycle, TeardownError
from smith_controller.members import Members
from smith_controller.reconciler import Reconciler
from smith_controller.registrations import Registrations, inform, served
from smith_controller.scheduler import Scheduler
from smith_controller.settings import (
    BUNDLES,
    CACHED,
    LOST,
    MEMBERS,
    OWNED,
    QUEUE_DEPTH,
    RECONCILES,
    RESYNCS,
    Settings,
)
from smith_controller.tasks import cancel_and_wait
from smith_engine.codec import loads
from smith_engine.model import (
    BUNDLE_KIND,
    JSONObject,
)
from smith_engine.plugins import PluginInfo
from smith_engine.routing import RoutingTable
from smith_kube import ConflictError, KubeClient, KubeConfig, KubeError

log = logging.getLogger("smith.controller")
Told = Callable[[str | None, JSONObject], None]  # an event of one of Smith's kinds, told to the controller
CLOSE_GRACE = 0.25  # seconds
# Bundles per page of their list: a page of 500 Bundles of 10 resources, with their status, is 3.7 MB of
# JSON and 20 MiB once parsed; the controller's memory grows to what one page takes, and stays there.
BUNDLES_PAGE = 100


@dataclass
class Controller:
    kube_config: KubeConfig
    settings: Settings = field(default_factory=Settings)
    bundles: dict[BundleKey, BundleState] = field(default_factory=dict)
    routing: RoutingTable = field(default_factory=RoutingTable)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)  # registered plugins, by name
    # An API client to use, and leave open, instead of one of its own (smith_all's, shared by every
    # service in the process: one connection pool, one rate limit).
    shared: KubeClient | None = None

    async def start(self) -> None:
        self.kube = self.shared or KubeClient(self.kube_config, rate=self.settings.rate())
        self.clients = ServiceClients.connect(
            planner=self.settings.planner,
            status=self.settings.status,
            routing=self.routing,
            trust=self.settings.trust,
            plugins=self.plugins,
            identity=self.settings.identity,
        )
        self.echoes = Echoes()
        self.cache = ChildCache(
            self.kube,
            self._child_event,
            namespace=self.settings.watch_namespace or None,
            keep=self._in_share,
        )
        self.scheduler: Scheduler[BundleKey] = Scheduler(
            self._work, concurrency=self.settings.concurrency, group=lambda key: key[0]
        )
        self.by_name = outside.OutsideWatches(self.kube, lambda key: self._child_event(key, None))
        self.reconciler = self._reconciler()
        self._resync = (
            asyncio.create_task(self._resync_every(self.settings.resync_seconds), name="resync")
            if self.settings.resync_seconds > 0
            else None
        )
        QUEUE_DEPTH.set_function(lambda: self.scheduler.depth)
        BUNDLES.set_function(lambda: len(self.bundles))
        self.members: Members | None = None
        self._others: frozenset[str] = frozenset()  # the other live replicas, when last told
        self._epoch = 0  # the membership last told of
        self._fresh = asyncio.Event()  # the Bundles listed, in this membership (see _catch_up)
        self._listed: set[BundleKey] = set()  # the Bundles of a list in progress
        self._bundle_watch = self._watch_bundles()
        # Executors and Plugins: listed before any reconcile (which needs to know who serves what)
        self.registrations = Registrations(
            self.kube,
            self.settings.namespace,
            self.routing,
            self.plugins,
            kinds_changed=self.cache.watch,
            changed=self.resync,
        )
        self.registrations.start()
        self.handover = GoSmithLock(
            self.kube, namespace=self.settings.watch_namespace or None, changed=self.resync
        )
        self.handover.start()
        await self._join()
        OWNED.set_function(lambda: sum(1 for key in self.bundles if self.owns(key)))
        CACHED.set_function(lambda: len(self.cache))

    async def _join(self) -> None:
        """With leases, become one of the replicas sharing the Bundles (see members.Members)."""
        if self.settings.lease_seconds <= 0:
            return
        self.members = Members(
            self.kube_config,
            namespace=self.settings.namespace,
            identity=self.settings.identity,
            duration=self.settings.lease_seconds,
            changed=self._members_changed,
        )
        await self.members.start()
        MEMBERS.set_function(lambda: len(self.members.live()) if self.members else 0)

    def _reconciler(self) -> Reconciler:
        return Reconciler(
            self.clients,
            self.kube,
            self.cache,
            self.by_name,
            Lifecycle(self.kube, self.clients, self.cache),
            self.echoes,
            later=lambda key, seconds: self.scheduler.later(key, seconds),
            status_window=self.settings.status_window,
            plan_ahead=self.settings.plan_ahead,
            access=outside.Access(self.kube, self.settings.default_account, self.settings.impersonator),
        )

    def _in_share(self, key: BundleKey) -> bool:
        """What this replica keeps for a Bundle: everything without leases, its share's with them."""
        return self.members is None or self.members.in_share(*key)

    def _members_changed(self) -> None:
        """The Bundles owned changed: the cache keeps the new share (listing again when it grew, as a
        replica left), blockers of others' Bundles are let go, and each Bundle is looked at (or dropped).
        Back after its lease ran out, the replica reads everything again first (`_catch_up`) and passes
        every Bundle again; otherwise one it kept owning and left converged is not (nothing changed)."""
        assert self.members is not None
        others = self.members.live() - {self.settings.identity}
        back = self.members.epoch != self._epoch and self.members.rejoined
        self._epoch = self.members.epoch
        self.cache.reshare(grew=bool(self._others - others) or back)
        self.by_name.retain(self._in_share)
        self._others = others
        for key in [k for k in self.bundles if not self._in_share(k)]:
            self.bundles[key].settled = None  # another replica's now: what it does is not seen here
        if back:
            self._catch_up()
        self.resync(changed=back)

    def _catch_up(self) -> None:
        """A replica whose lease ran out (paused, cut off) missed what happened meanwhile, and its watches
        may still be delivering it: the Bundles it holds may be generations behind. It lists them again
        (the cache lists every kind again too) and reconciles nothing until that list is in."""
        self._fresh.clear()
        self._bundle_watch.cancel()
        self._bundle_watch = self._watch_bundles()

    def _watch_bundles(self) -> asyncio.Task[None]:
        """List the Bundles page by page, then watch them (as the cache does their objects). Not kopf's
        watch: kopf lists them in one response and gives each its own worker holding its event, all at
        once; a restarted controller with 1,500 Bundles grew by some 50 MiB that way, and kept them."""
        return asyncio.create_task(
            inform(
                self.kube,
                BUNDLE_KIND,
                self._fresh,
                on_page=self._bundles_page,
                on_event=lambda event: self.bundle_event(event.type, event.object),
                namespace=self.settings.watch_namespace or None,
                page=BUNDLES_PAGE,
            ),
            name="watch Bundles",
        )

    def _bundles_page(self, items: Sequence[JSONObject], first: bool, last: bool) -> None:
        """A page of a (re)list of the Bundles; after the last, those it did not show are gone."""
        if first:
            self._listed = set()
        for body in items:
            self._listed.add((body["metadata"]["namespace"], body["metadata"]["name"]))
            self.bundle_event(None, body)
        if last:
            for key in self.bundles.keys() - self._listed:
                self.bundle_event("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
            log.info("Bundles listed: %d", len(self._listed))
            self._listed = set()

    def owns(self, key: BundleKey, epoch: int | None = None) -> bool:
        """The Bundle is this replica's to reconcile (always, without leases: a single replica); with
        `epoch`, in that membership only."""
        return self.members is None or self.members.left(*key, epoch=epoch) > 0

    def _guard(self, key: BundleKey, epoch: int | None) -> None:
        """Right before a write of its own: ShareLostError when the Bundle is not this replica's any more
        (or the membership the reconcile began in is over: what it read may be stale)."""
        if not self.owns(key, epoch):
            raise ShareLostError

    def _fence(self, key: BundleKey, epoch: int | None) -> Fence | None:
        members = self.members
        return None if members is None else (lambda: members.left(*key, epoch=epoch))

    def synced(self) -> bool:
        """Ready to reconcile: started, with the Bundles and every watched kind listed once."""
        return (
            hasattr(self, "cache")
            and self._fresh.is_set()
            and self.registrations.is_synced()
            and self.cache.is_synced()
            and (self.members is None or self.members.is_synced())
        )

    async def stop(self) -> None:
        await cancel_and_wait([t for t in (self._resync, self._bundle_watch) if t is not None])
        await self.registrations.stop()
        await self.handover.stop()
        await self.scheduler.stop()  # first: a reconcile still running could start a blocker's watch
        if self.members is not None:
            await self.members.stop()  # the others take this replica's share at once
        await self.by_name.stop()
        await self.cache.stop()
        await self.clients.close()
        if self.shared is None:
            await self.kube.close()

    def resync(self, *, changed: bool = True) -> None:
        """Mark every Bundle for a reconcile. `changed`: something every pass reads changed (who serves
        which kind, the plugins, the share of Bundles, Go Smith's lock), so no Bundle's last pass stands.
        Unchanged (the periodic resync, the safety net for verdicts that change with time alone, such as
        an HPA's ScalingActive False for over five minutes), a Bundle whose last pass left it converged
        and that nothing it reads changed since is not passed again (Reconciler.reconcile)."""
        for key in self.bundles:
            if changed:
                self.changed(key)
            else:
                self.scheduler.trigger(key)

    def _status_changed(self, key: BundleKey, state: BundleState) -> None:
        """The Bundle's status is not the one Smith last knew of: written by Smith (its report's answer
        not back yet) or by someone else (by hand; Go Smith). Not worth a pass of its own: the next
        resync passes the Bundle, and its report puts the status right. While Go Smith holds its lock,
        at once: its status write may have dropped the condition that says Smith waits."""
        state.changes += 1
        if self.handover.held() is not None:
            self.scheduler.trigger(key)

    def changed(self, key: BundleKey) -> None:
        """Something the Bundle's pass reads changed: a pass, even of a Bundle left converged."""
        if (state := self.bundles.get(key)) is not None:
            state.changes += 1
        self.scheduler.trigger(key)

    async def _resync_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            RESYNCS.inc()
            self.resync(changed=False)

    # --- events -----------------------------------------------------------------------------------

    def bundle_event(self, event_type: str | None, body: JSONObject) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        state = self.bundles.get(key)
        old = loads(state.kept) if state is not None else None
        if old is not None and _behind(event_type, body, old):
            return  # the watch catching up with what a list read already (see _catch_up)
        if event_type == "DELETED":
            self.bundles.pop(key, None)
            self.scheduler.forget(key)
            self.echoes.forget(key)
            self.by_name.set(key, ())
            return
        if state is None:
            self.bundles[key] = BundleState(kept(body))
        else:
            state.kept = kept(body)
        if _needs_work(old, body):
            self.changed(key)
        elif old is not None and state is not None and old.get("status") != body.get("status"):
            self._status_changed(key, state)

    def _child_event(self, key: BundleKey, seen: Version | None) -> None:
        """One of the Bundle's objects (or an object in its way: `seen` None) changed, to version `seen`,
        or went: a pass, unless it is only the echo of the Bundle's own pass (see echoes.Echoes)."""
        if key in self.bundles and self.echoes.news(key, seen):
            self.changed(key)

    async def _work(self, key: BundleKey) -> bool:
        """The work queue's worker: one pass of the Bundle (or one step of its teardown) once everything
        it reads has been listed; True asks for a retry after a back-off."""
        await self.cache.synced()
        if self.members is not None:
            await self.members.synced()
        await self._fresh.wait()
        await self.registrations.synced()
        await self.handover.synced()
        state = self.bundles.get(key)
        epoch = self.members.epoch if self.members is not None else None
        if state is None or not self.owns(key, epoch):
            return False
        if (held := self.handover.held()) is not None:  # Go Smith acts: taken up again when it lets go
            return await self._leave(key, state, held.reason, epoch)
        began, result = time.perf_counter(), "error"
        self.echoes.begin(key)
        try:
            retry = await self.reconciler.reconcile(
                key, state, fence=self._fence(key, epoch), guard=lambda: self._guard(key, epoch)
            )
            if self.bundles.get(key) is not state:  # deleted meanwhile: what the pass watched, it lets go
                self.by_name.set(key, ())
            result = "retry" if retry else "ok"
            return retry
        except ShareLostError:
            log.info("reconcile of %s/%s stopped: another replica owns the Bundle now", *key)
            LOST.inc()
            result = "ok"
            return False
        except grpc.aio.AioRpcError as e:
            log.warning("reconcile of %s/%s: %s %s", *key, e.code().name, e.details())
            return True
        except (ConflictError, TeardownError) as e:
            log.info("reconcile of %s/%s: %s (retrying)", *key, e)
            return True
        except KubeError as e:  # the API server failing or unreachable
            log.warning("reconcile of %s/%s: %s (retrying)", *key, e)
            return True
        except Exception:
            log.exception("reconcile of %s/%s failed", *key)
            return True
        finally:
            if self.echoes.end(key):  # an event meanwhile that was not the echo of its own writes
                self.changed(key)
            RECONCILES.labels(result=result).observe(time.perf_counter() - began)

    async def _leave(self, key: BundleKey, state: BundleState, why: str, epoch: int | None) -> bool:
        """Leave the Bundle to Go Smith, saying `why` on it; True asks for a retry."""
        try:
            await self.clients.hold(loads(state.kept), why, fence=self._fence(key, epoch))
        except ShareLostError:
            return False
        except grpc.aio.AioRpcError as e:
            log.warning("holding %s/%s back: %s %s", *key, e.code().name, e.details())
            return e.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
        return False


def _behind(event_type: str | None, event: JSONObject, kept: JSONObject) -> bool:
    """The event tells of an older state than the one kept: an earlier generation of the same Bundle, or
    the deletion of an earlier Bundle of that name. (Only after a list: a watch alone is in order.)"""
    now, before = event["metadata"], kept["metadata"]
    if "uid" not in now:  # a Bundle a list no longer shows
        return False
    if now["uid"] != before.get("uid"):
        return event_type == "DELETED"
    return int(now.get("generation") or 0) < int(before.get("generation") or 0)


def _needs_work(old: JSONObject | None, new: JSONObject) -> bool:
    """Our own status and finalizer writes come back as events too: only a first sight, a new
    generation, a deletion, or a finalizer change while deleting (the garbage collector's orphaning done)
    needs a reconcile. Children's changes arrive through the cache."""
    if old is None:
        return True
    before, now = old["metadata"], new["metadata"]
    deleting = bool(now.get("deletionTimestamp"))
    return (
        before.get("generation") != now.get("generation")
        or bool(before.get("deletionTimestamp")) != deleting
        or (deleting and before.get("finalizers") != now.get("finalizers"))
    )


def build_registry(controller: Controller) -> kopf.OperatorRegistry:
    """kopf's handlers, bound to `controller` (an explicit registry: no module-level state): the
    operator's lifecycle (startup, cleanup) and credentials (login). No resource handler: kopf watches
    nothing; the Bundles, the registrations and the managed objects are the controller's own informers
    (kopf kept every listed Bundle's event alive in a worker of its own: see `_watch_bundles`)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # Smith reports through Bundle status, not kopf's events
        # kopf has no resource to serve (no handler of one): it must not scan discovery for any
        # either, which could stop at a group missing for a moment (an API server restarting).
        settings.scanning.disabled = True
        await controller.start()
        await served(controller.kube)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await controller.stop()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        """kopf asks at start (it makes no request after): the credentials as they are now."""
        config = controller.kube_config
        await config.reload()
        cert, key = config.client_certificate or (None, None)
        return kopf.ConnectionInfo(
            server=config.server,
            ca_path=config.ca_file,
            insecure=config.insecure,
            token=config.token(),
            certificate_path=cert,
            private_key_path=key,
            default_namespace=config.namespace,
        )

    return registry


Flag = asyncio.Event | threading.Event


async def run(controller: Controller, *, stop: Flag | None = None, ready: Flag | None = None) -> None:
    """Run the operator until `stop` is set (or forever); `ready` is set once it is serving."""
    only = controller.settings.watch_namespace
    await kopf.operator(
        registry=build_registry(controller),
        clusterwide=not only,
        namespaces=sorted({only, controller.settings.namespace}) if only else [],
        standalone=True,
        stop_flag=stop,
        ready_flag=ready,
    )
    # TLS connections closed on the way out (ours and kopf's) finish closing in the next loop turns;
    # give them those before the loop goes, as aiohttp advises, so none is left to the garbage collector.
    await asyncio.sleep(CLOSE_GRACE)
