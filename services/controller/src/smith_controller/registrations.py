"""Where the controller sends work: the `Executor` and `Plugin` registrations in Smith's namespace, listed
and watched (both listed before any reconcile: a pass needs to know who serves what). An executor's
change of kinds changes the routing table and the kinds the child cache watches; any change that could
change a plan marks every Bundle for a pass."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from smith_controller.settings import HEARTBEAT
from smith_controller.tasks import cancel_and_wait
from smith_engine.model import API_VERSION, BUNDLE_KIND, GROUP, GroupKind, JSONObject
from smith_engine.plugins import PluginInfo
from smith_engine.routing import ExecutorInfo, RoutingTable
from smith_engine.times import parse_rfc3339
from smith_kube import KubeClient, KubeError, UnservedKindError
from smith_kube.backoff import backoff
from smith_kube.informer import run_informer

log = logging.getLogger("smith.controller")
Told = Callable[[str | None, JSONObject], None]  # an event of one of Smith's kinds
SMITH_KINDS = (BUNDLE_KIND, "Executor", "Plugin")  # what must be served before the controller starts


async def inform(kube: KubeClient, kind: str, synced: asyncio.Event, **informer: Any) -> None:
    """List and watch one of Smith's kinds for as long as the controller runs."""
    for delay in backoff(1.0, 30.0):
        try:
            await run_informer(kube, API_VERSION, kind, synced=synced, **informer)
        except UnservedKindError as e:  # the CRD not installed, or not established yet
            log.warning("%s is not served (%s); looking again in %.0fs", kind, e, delay)
            await asyncio.sleep(delay)
            kube.forget(API_VERSION)


async def served(kube: KubeClient) -> None:
    """Wait until the API server's discovery shows Smith's kinds (an API server just (re)started lists
    only some groups for a moment), logging why meanwhile: the informers of Smith's kinds, started
    already, retry a kind not served with back-off; this says so once, plainly, at start."""
    for delay in backoff(0.2, 5.0):
        try:
            groups = (await kube.request("GET", "/apis")).get("groups") or []
            if any(g.get("name") == GROUP for g in groups):
                kube.forget(API_VERSION)
                for kind in SMITH_KINDS:
                    await kube.resource(API_VERSION, kind)
                return
            problem = f"no group {GROUP} in discovery yet"
        except (KubeError, UnservedKindError) as e:
            problem = str(e) or type(e).__name__
        log.info("waiting for the API server to serve Smith's kinds: %s", problem)
        await asyncio.sleep(delay)


@dataclass
class Registrations:
    kube: KubeClient
    namespace: str  # Smith's, where the registrations live
    routing: RoutingTable
    plugins: dict[str, PluginInfo]  # registered plugins, by name
    kinds_changed: Callable[[frozenset[GroupKind]], None]  # the kinds some executor serves now
    changed: Callable[[], None]  # a change that may change plans: every Bundle is looked at again
    _synced: dict[str, asyncio.Event] = field(default_factory=dict)
    _names: dict[str, set[str]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._synced = {kind: asyncio.Event() for kind in ("Executor", "Plugin")}
        self._names = {kind: set() for kind in self._synced}
        self._tasks = [
            self._watch_registrations("Executor", self.executor_event),
            self._watch_registrations("Plugin", self.plugin_event),
        ]

    def is_synced(self) -> bool:
        return bool(self._synced) and all(e.is_set() for e in self._synced.values())

    async def synced(self) -> None:
        for listed in self._synced.values():
            await listed.wait()

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)

    def _watch_registrations(self, kind: str, told: Told) -> asyncio.Task[None]:
        return asyncio.create_task(
            inform(
                self.kube,
                kind,
                self._synced[kind],
                on_list=lambda items: self._registrations_listed(kind, items, told),
                on_event=lambda event: self._registration(kind, told, event.type, event.object),
                namespace=self.namespace,
            ),
            name=f"watch {kind}s",
        )

    def _registration(self, kind: str, told: Told, event_type: str | None, body: JSONObject) -> None:
        names = self._names[kind]
        (names.discard if event_type == "DELETED" else names.add)(body["metadata"]["name"])
        told(event_type, body)

    def _registrations_listed(self, kind: str, items: Sequence[JSONObject], told: Told) -> None:
        """A (re)list of Executors or Plugins: each told as it is, and those it no longer shows as gone."""
        listed = {item["metadata"]["name"] for item in items}
        for name in self._names[kind] - listed:
            self._registration(
                kind, told, "DELETED", {"metadata": {"name": name, "namespace": self.namespace}}
            )
        for item in items:
            self._registration(kind, told, None, item)

    def executor_event(self, event_type: str | None, body: JSONObject) -> None:
        if body["metadata"].get("namespace") != self.namespace:
            return
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            with contextlib.suppress(KeyError):
                HEARTBEAT.remove(name)
        elif (beat := parse_rfc3339((body.get("status") or {}).get("heartbeatTime"))) is not None:
            HEARTBEAT.labels(executor=name).set(beat.timestamp())
        changed = (
            self.routing.remove(name)
            if event_type == "DELETED"
            else self.routing.update(ExecutorInfo.of(body))
        )
        if changed:
            log.info(
                "routing changed: %s",
                {str(k): self.routing.endpoint(k) for k in sorted(self.routing.kinds())},
            )
            for other in list(self.routing.executors):
                if refused := self.routing.refused(other):
                    log.warning(
                        "executor %s claims kinds other executors serve; refused: %s",
                        other,
                        ", ".join(f"{k} (served by {owner})" for k, owner in refused.items()),
                    )
            self.kinds_changed(self.routing.kinds())
            self.changed()

    def plugin_event(self, event_type: str | None, body: JSONObject) -> None:
        """A plugin registered, changed or went away: every Bundle is planned again (one that uses it
        may now go on, or fail)."""
        if body["metadata"].get("namespace") != self.namespace:
            return
        info = PluginInfo.of(body)
        old = self.plugins.get(info.name)
        if event_type == "DELETED":
            self.plugins.pop(info.name, None)
        else:
            self.plugins[info.name] = info
        if (
            event_type == "DELETED"
            or old is None
            or replace(old, heartbeat="") != replace(info, heartbeat="")
        ):
            log.info("plugins: %s", {n: p.endpoint for n, p in sorted(self.plugins.items())})
            self.changed()
