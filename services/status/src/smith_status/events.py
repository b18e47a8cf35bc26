"""Kubernetes Events on the Bundle (what `kubectl describe bundle` shows), like native controllers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from smith.v1 import common_pb2
from smith_engine.events import REMEMBERED, Correlator, Notice, Transition
from smith_engine.model import API_VERSION, BUNDLE_KIND
from smith_engine.times import rfc3339
from smith_kube import KubeClient, KubeError, NotFoundError

log = logging.getLogger("smith.status")
EVENTS = Counter("smith_events_posted", "Events posted on Bundles, by type and reason", ["type", "reason"])
DROPPED = Counter("smith_events_dropped", "Events not posted: the recorder's queue was full", ["reason"])
PENDING = Gauge("smith_events_pending", "Events handed to the recorder and not posted yet (its backlog)")
# Smith's own metrics, named and labelled as its Go controller has them (dashboards and alerts carry over)
BUNDLE_TRANSITIONS = Counter(
    "smith_bundle_transitions",
    "Records the number of times a Bundle transitions into a new condition",
    ["namespace", "name", "type", "reason"],
)
RESOURCE_TRANSITIONS = Counter(
    "smith_bundle_resource_transitions",
    "Records the number of times a Bundle's resource transitions into a new condition",
    ["namespace", "name", "resource", "type", "reason"],
)
COMPONENT = "smith"
MESSAGE_LIMIT = 1024  # characters of an Event's message


def event(bundle: common_pb2.BundleRef, notice: Notice, *, now: datetime, instance: str) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{bundle.name}.",
            "namespace": bundle.namespace,
            **({"annotations": dict(notice.annotations)} if notice.annotations else {}),
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": BUNDLE_KIND,
            "namespace": bundle.namespace,
            "name": bundle.name,
            "uid": bundle.uid,
        },
        "type": notice.type,
        "reason": notice.reason,
        "message": notice.message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def count(bundle: common_pb2.BundleRef, moved: Sequence[Transition]) -> None:
    for t in moved:
        if t.resource:
            RESOURCE_TRANSITIONS.labels(bundle.namespace, bundle.name, t.resource, t.type, t.reason).inc()
        else:
            BUNDLE_TRANSITIONS.labels(bundle.namespace, bundle.name, t.type, t.reason).inc()


@dataclass(slots=True)
class _Event:
    """One Event on the API server (or on its way there): `body["count"]` is how many times it was
    told, `posted` how many the API server has; `name` is given by the API server. `queued` until
    its write is done: one write at a time per Event (a second POST would be a second Event)."""

    body: dict[str, Any]
    name: str = ""
    posted: int = 0
    queued: bool = False


class EventRecorder:
    """Posts events in the background, like client-go's recorder: the status report does not wait for
    them, a failure to post one is logged, never an error of the report, and a burst (hundreds of Bundles
    converging at once) waits in a bounded queue, a few small dicts each, posted by at most
    `concurrency` workers; beyond `backlog` queued events new ones are dropped and counted, as
    client-go drops them when its queue is full.

    An Event told again (or combined with similar ones: `Correlator`) raises the count of the one
    posted; raises still queued are one write (a count of 40 is one PATCH, not 40)."""

    def __init__(self, kube: KubeClient, *, concurrency: int = 16, backlog: int = 10_000) -> None:
        self.kube = kube
        self.instance = os.environ.get("HOSTNAME") or socket.gethostname()
        self._concurrency, self._backlog = concurrency, backlog
        self._queue: deque[_Event] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._posting = 0
        self._correlator = Correlator()
        self._told: OrderedDict[tuple[str, ...], _Event] = OrderedDict()
        PENDING.set_function(lambda: len(self._queue) + self._posting)

    def post(self, bundle: common_pb2.BundleRef, notices: Sequence[Notice], *, instance: str = "") -> None:
        """Queue `notices` as Events on `bundle`, reported by `instance` (the controller replica whose
        reconcile they come from; this service's own host when not said)."""
        now = datetime.now(UTC)
        instance = instance or self.instance
        for notice in notices:
            similar = (bundle.namespace, bundle.name, bundle.uid, notice.type, notice.reason, instance)
            told = self._correlator.told(similar, notice.message, now=now.timestamp())
            known = self._told.pop(told.key, None)
            if known is not None:  # told before: the same Event, once more
                known.body |= {
                    "count": known.body["count"] + 1,
                    "lastTimestamp": rfc3339(now),
                    "message": told.message[:MESSAGE_LIMIT],
                }
            elif len(self._queue) >= self._backlog:
                DROPPED.labels(reason=notice.reason).inc()
                continue
            else:
                known = _Event(event(bundle, told.notice(notice), now=now, instance=instance))
            self._told[told.key] = known
            if len(self._told) > REMEMBERED:
                self._told.popitem(last=False)
            self._enqueue(known)
        while self._queue and len(self._workers) < self._concurrency:
            worker = asyncio.create_task(self._work(), name="post events")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def drain(self) -> None:
        """Wait for the events posted so far (on shutdown)."""
        await asyncio.gather(*self._workers, return_exceptions=True)

    def _enqueue(self, told: _Event) -> None:
        if not told.queued:
            told.queued = True
            self._queue.append(told)

    async def _work(self) -> None:
        while self._queue:
            told = self._queue.popleft()
            self._posting += 1
            try:
                await self._post(told)
            finally:
                self._posting -= 1
                told.queued = False
            if told.body["count"] != told.posted:  # told again while it was on its way
                self._enqueue(told)

    async def _post(self, told: _Event) -> None:
        body, count = told.body, told.body["count"]
        try:
            if told.name:
                try:
                    await self.kube.patch(
                        "v1",
                        "Event",
                        told.name,
                        {"count": count, "lastTimestamp": body["lastTimestamp"], "message": body["message"]},
                        namespace=body["metadata"]["namespace"],
                    )
                except NotFoundError:  # expired (the API server's event TTL): post it anew
                    told.name = ""
            if not told.name:
                told.name = (await self.kube.create(dict(body)))["metadata"]["name"]
        except KubeError as e:  # refused, or the API server unreachable
            problem = str(e)
            log.warning(
                "could not post event %s on %s: %s", body["reason"], body["involvedObject"]["name"], problem
            )
            told.posted = count  # given up, as client-go does: told again, it is tried again
            return
        told.posted = count
        EVENTS.labels(type=body["type"], reason=body["reason"]).inc()
