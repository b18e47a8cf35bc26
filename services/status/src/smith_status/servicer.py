"""Status servicer: computes the Bundle's status with the pure engine and writes the status
subresource only when it differs from what the Bundle already has."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from opentelemetry import trace
from smith_wire.convert import (
    dump,
    load,
    pending_from_proto,
    plugin_status_from_proto,
    result_from_proto,
    verdict_from_proto,
)
from smith_wire.rpc import Register

from smith.v1 import common_pb2, status_pb2, status_pb2_grpc
from smith_engine.admission import bundle_problem
from smith_engine.conditions import by_type
from smith_engine.events import notices, transitions
from smith_engine.handover import held_status
from smith_engine.model import API_VERSION, BUNDLE_KIND, Bundle, JSONObject
from smith_engine.status import ActionResult, ConditionType, bundle_status
from smith_kube import ApiError, ConflictError, KubeClient, KubeError, NotFoundError
from smith_kube.client import JSON_PATCH
from smith_kube.uids import UidCache
from smith_status.events import EventRecorder, count

WRITE_ATTEMPTS = 4
HOLD_MESSAGE = 1024  # characters of a hold's message kept


class StatusServicer(status_pb2_grpc.StatusServicer):
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.events = EventRecorder(kube)
        self.bundles = UidCache(kube, API_VERSION, BUNDLE_KIND)

    async def Report(  # noqa: N802 - gRPC method name
        self, request: status_pb2.ReportRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> status_pb2.ReportResponse:
        """Write the status over the version the reconcile read. When the Bundle moved on meanwhile (the
        controller read it before its previous status write came back), re-read it and write over that:
        transitions (Events, metrics) are told once, against the status actually replaced."""
        ref = request.bundle
        span = trace.get_current_span()
        span.set_attribute("smith.bundle", f"{ref.namespace}/{ref.name}")
        await self._exists(ref, context)
        results = [result_from_proto(r) for r in request.results]
        previous, version = load(request.previous_status_json), ref.resource_version
        written = ""
        try:
            for _ in range(WRITE_ATTEMPTS):
                status = self._status(request, previous, results)
                if status == previous:
                    break
                if (left := context.time_remaining()) is not None and left <= 0:
                    # the caller's deadline is its fence (a controller replica's share lasts as long
                    # as its lease): past it, another replica may own the Bundle now
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the report came too late")
                try:
                    written = (await self._write(ref, status, version))["metadata"]["resourceVersion"]
                    break
                except ConflictError:
                    if (live := await self._read(ref)) is None:
                        break
                    previous, version = live.get("status") or {}, live["metadata"]["resourceVersion"]
            else:
                await context.abort(
                    grpc.StatusCode.ABORTED, "the Bundle kept changing as its status was written"
                )
        except NotFoundError:
            pass  # the Bundle is gone: nothing to write
        except KubeError as e:
            await _abort(context, e)
        moved = transitions(previous, status) if written else []
        self.events.post(ref, notices(previous, status, results, moved), instance=request.controller)
        count(ref, moved)
        ready = by_type(status["conditions"]).get(ConditionType.READY, {}).get("status") == "True"
        span.set_attribute("smith.verdict", "Ready" if ready else "NotReady")
        return status_pb2.ReportResponse(
            status_json=dump(status), changed=bool(written), resource_version=written
        )

    async def Hold(  # noqa: N802 - gRPC method name
        self, request: status_pb2.HoldRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> status_pb2.HoldResponse:
        """Say on the Bundle that Smith leaves it to Go Smith (smith_engine.handover.held_status): the
        Bundle read here, the one condition added to its status as it is, written over the version read
        (a status Go Smith wrote meanwhile is never overwritten: ABORTED, and the controller asks again)."""
        ref = request.bundle
        trace.get_current_span().set_attribute("smith.bundle", f"{ref.namespace}/{ref.name}")
        if not ref.uid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a hold names the Bundle's uid")
        await self._exists(ref, context)
        try:
            live = await self._read(ref)
            if live is None or live["metadata"].get("uid") != ref.uid:
                return status_pb2.HoldResponse(changed=False)
            now = datetime.now(UTC)
            if (status := held_status(live.get("status"), request.message[:HOLD_MESSAGE], now)) is None:
                return status_pb2.HoldResponse(changed=False)
            if (left := context.time_remaining()) is not None and left <= 0:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the hold came too late")
            await self._write(ref, status, live["metadata"]["resourceVersion"])
        except ConflictError:
            await context.abort(grpc.StatusCode.ABORTED, "the Bundle changed as the condition was written")
        except NotFoundError:
            return status_pb2.HoldResponse(changed=False)
        except KubeError as e:
            await _abort(context, e)
        return status_pb2.HoldResponse(changed=True)

    async def _exists(
        self, ref: common_pb2.BundleRef, context: grpc.aio.ServicerContext[object, object]
    ) -> None:
        """Whoever calls: only about the Bundle that exists (its status and Events, nothing else)."""
        try:
            uid = await self.bundles.uid(ref.namespace, ref.name, expected=ref.uid) if ref.uid else None
        except KubeError as e:  # no answer now: the call is made again
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"could not read the Bundle: {e}")
        if problem := bundle_problem(Bundle(namespace=ref.namespace, name=ref.name, uid=ref.uid), uid):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)

    async def _read(self, ref: common_pb2.BundleRef) -> JSONObject | None:
        try:
            return await self.kube.get(API_VERSION, BUNDLE_KIND, ref.name, namespace=ref.namespace)
        except NotFoundError:
            return None

    @staticmethod
    def _status(
        request: status_pb2.ReportRequest, previous: JSONObject, results: list[ActionResult]
    ) -> JSONObject:
        return bundle_status(
            previous=previous,
            generation=request.bundle.generation,
            verdicts=[verdict_from_proto(v) for v in request.verdicts],
            results=results,
            pending=[pending_from_proto(p) for p in request.pending],
            plugins=[plugin_status_from_proto(p) for p in request.plugin_statuses],
            invalid=request.invalid_bundle_message,
            now=datetime.now(UTC),
        )

    async def _write(self, ref: common_pb2.BundleRef, status: JSONObject, version: str) -> JSONObject:
        """Replace the status subresource; with `version`, only over that resourceVersion (409 otherwise)."""
        patch: list[JSONObject] = [
            {"op": "test", "path": "/metadata/uid", "value": ref.uid},  # that Bundle, not one made since
            {"op": "add", "path": "/status", "value": status},
        ]
        if version:
            patch.append({"op": "replace", "path": "/metadata/resourceVersion", "value": version})
        return await self.kube.patch(
            API_VERSION,
            BUNDLE_KIND,
            ref.name,
            patch,
            namespace=ref.namespace,
            content_type=JSON_PATCH,
            subresource="status",
        )

    def registration(self) -> Register:
        return lambda server: status_pb2_grpc.add_StatusServicer_to_server(self, server)


async def _abort(context: grpc.aio.ServicerContext[object, object], e: KubeError) -> None:
    """End the call for an API error: UNAVAILABLE (made again) unless the API server refused for good."""
    retriable = not isinstance(e, ApiError) or e.retriable  # no answer at all: the call is made again
    await context.abort(
        grpc.StatusCode.UNAVAILABLE if retriable else grpc.StatusCode.FAILED_PRECONDITION, str(e)
    )
