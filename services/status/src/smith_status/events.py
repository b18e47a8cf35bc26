"""Kubernetes Events on the Bundle (what `kubectl describe bundle` shows), like native controllers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

from smith.v1 import common_pb2
from smith_engine.events import Notice, Transition
from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_engine.times import rfc3339
from smith_kube import CONNECTION_ERRORS, ApiError, KubeClient

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


def event(bundle: common_pb2.BundleRef, notice: Notice, *, now: datetime, instance: str) -> JSONObject:
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
        "message": notice.message[:1024],
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


class EventRecorder:
    """Posts events in the background, like client-go's recorder: the status report does not wait for
    them, a failure to post one is logged, never an error of the report, and a burst (hundreds of Bundles
    converging at once) waits in a bounded queue, a few small dicts each, posted by at most
    `concurrency` workers; beyond `backlog` queued events new ones are dropped and counted, as
    client-go drops them when its queue is full."""

    def __init__(self, kube: KubeClient, *, concurrency: int = 16, backlog: int = 10_000) -> None:
        self.kube = kube
        self.instance = os.environ.get("HOSTNAME") or socket.gethostname()
        self._concurrency, self._backlog = concurrency, backlog
        self._queue: deque[JSONObject] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._posting = 0
        PENDING.set_function(lambda: len(self._queue) + self._posting)

    def post(self, bundle: common_pb2.BundleRef, notices: Sequence[Notice], *, instance: str = "") -> None:
        """Queue `notices` as Events on `bundle`, reported by `instance` (the controller replica whose
        reconcile they come from; this service's own host when not said)."""
        now = datetime.now(UTC)
        for notice in notices:
            if len(self._queue) >= self._backlog:
                DROPPED.labels(reason=notice.reason).inc()
                continue
            self._queue.append(event(bundle, notice, now=now, instance=instance or self.instance))
        while self._queue and len(self._workers) < self._concurrency:
            worker = asyncio.create_task(self._work(), name="post events")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def drain(self) -> None:
        """Wait for the events posted so far (on shutdown)."""
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self) -> None:
        while self._queue:
            body = self._queue.popleft()
            self._posting += 1
            try:
                await self._post(body)
            finally:
                self._posting -= 1

    async def _post(self, body: JSONObject) -> None:
        try:
            await self.kube.create(body)
        except (ApiError, *CONNECTION_ERRORS) as e:  # refused, or the API server unreachable
            problem = str(e) or type(e).__name__
            log.warning(
                "could not post event %s on %s: %s", body["reason"], body["involvedObject"]["name"], problem
            )
            return
        EVENTS.labels(type=body["type"], reason=body["reason"]).inc()
