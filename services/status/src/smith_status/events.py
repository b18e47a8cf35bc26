"""Kubernetes Events on the Bundle (what `kubectl describe bundle` shows), like native controllers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter

from smith.v1 import common_pb2
from smith_engine.events import Notice, Transition
from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_engine.times import rfc3339
from smith_kube import ApiError, KubeClient

log = logging.getLogger("smith.status")
EVENTS = Counter("smith_events_posted", "Events posted on Bundles, by type and reason", ["type", "reason"])
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
    them, and a failure to post one is logged, never an error of the report."""

    def __init__(self, kube: KubeClient, *, concurrency: int = 16) -> None:
        self.kube = kube
        self.instance = os.environ.get("HOSTNAME") or socket.gethostname()
        self._limit = asyncio.Semaphore(concurrency)
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, bundle: common_pb2.BundleRef, notices: Sequence[Notice]) -> None:
        now = datetime.now(UTC)
        for notice in notices:
            task = asyncio.create_task(self._post(event(bundle, notice, now=now, instance=self.instance)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the events posted so far (on shutdown)."""
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def _post(self, body: JSONObject) -> None:
        try:
            async with self._limit:
                await self.kube.create(body)
        except ApiError as e:
            log.warning(
                "could not post event %s on %s: %s", body["reason"], body["involvedObject"]["name"], e
            )
            return
        EVENTS.labels(type=body["type"], reason=body["reason"]).inc()
