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

from smith.v1 import status_pb2, status_pb2_grpc
from smith_engine.conditions import by_type
from smith_engine.events import notices, transitions
from smith_engine.model import API_VERSION, BUNDLE_KIND
from smith_engine.status import ConditionType, bundle_status
from smith_kube import ApiError, KubeClient, NotFoundError
from smith_kube.client import JSON_PATCH
from smith_status.events import EventRecorder, count


class StatusServicer(status_pb2_grpc.StatusServicer):
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.events = EventRecorder(kube)

    async def Report(  # noqa: N802 - gRPC method name
        self, request: status_pb2.ReportRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> status_pb2.ReportResponse:
        previous = load(request.previous_status_json)
        results = [result_from_proto(r) for r in request.results]
        status = bundle_status(
            previous=previous,
            generation=request.bundle.generation,
            verdicts=[verdict_from_proto(v) for v in request.verdicts],
            results=results,
            pending=[pending_from_proto(p) for p in request.pending],
            plugins=[plugin_status_from_proto(p) for p in request.plugin_statuses],
            invalid=request.invalid_bundle_message,
            now=datetime.now(UTC),
        )
        moved = transitions(previous, status)
        self.events.post(request.bundle, notices(previous, status, results, moved))
        count(request.bundle, moved)
        span = trace.get_current_span()
        span.set_attribute("smith.bundle", f"{request.bundle.namespace}/{request.bundle.name}")
        ready = by_type(status["conditions"]).get(ConditionType.READY, {}).get("status") == "True"
        span.set_attribute("smith.verdict", "Ready" if ready else "NotReady")
        if status == previous:
            return status_pb2.ReportResponse(status_json=dump(status), changed=False)
        patch = [{"op": "add", "path": "/status", "value": status}]
        try:
            await self.kube.patch(
                API_VERSION,
                BUNDLE_KIND,
                request.bundle.name,
                patch,
                namespace=request.bundle.namespace,
                content_type=JSON_PATCH,
                subresource="status",
            )
        except NotFoundError:
            return status_pb2.ReportResponse(status_json=dump(status), changed=False)
        except ApiError as e:
            code = grpc.StatusCode.UNAVAILABLE if e.retriable else grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(e))
        return status_pb2.ReportResponse(status_json=dump(status), changed=True)

    def registration(self) -> Register:
        return lambda server: status_pb2_grpc.add_StatusServicer_to_server(self, server)
