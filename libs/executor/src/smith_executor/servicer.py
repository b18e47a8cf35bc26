"""The executor servicer: server-side apply (field manager `smith`), deletion and readiness for the
kinds of one family. Never takes over an object another controller (or nobody) controls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import grpc
from opentelemetry import trace
from prometheus_client import Counter
from smith_wire.convert import action_from_proto, bundle_from_proto, load, readiness_to_proto, result_to_proto
from smith_wire.rpc import Register

from smith.v1 import executor_pb2, executor_pb2_grpc
from smith_engine import planner
from smith_engine.model import Bundle, GroupKind, JSONObject, ObjectRef
from smith_engine.planner import Observed, ownership_problem
from smith_engine.readiness import Readiness, ReadinessCheck, terminal
from smith_engine.status import ActionResult, Outcome
from smith_kube import ApiError, ConflictError, KubeClient, NotFoundError, UnservedKindError
from smith_kube.client import JSON_PATCH

FIELD_MANAGER = "smith"
ACTIONS = Counter(
    "smith_actions", "Actions executed, by kind, action and outcome", ["kind", "action", "outcome"]
)
log = logging.getLogger("smith.executor")
SECRET = GroupKind("", "Secret")
tracer = trace.get_tracer("smith.executor")


class Family(Protocol):
    """The kinds one executor serves and what it knows about them."""

    def kinds(self) -> Sequence[GroupKind]: ...

    def assess(self, obj: JSONObject) -> Readiness: ...

    def refusal(self, obj: JSONObject) -> str | None:
        """Why an object of a served kind must not be applied at all (a terminal error), or None."""
        ...


@dataclass(frozen=True)
class RegistryFamily:
    """A fixed set of kinds with their readiness checks (built-in kinds, Service Catalog)."""

    registry: Mapping[GroupKind, ReadinessCheck]

    def kinds(self) -> Sequence[GroupKind]:
        return sorted(self.registry)

    def assess(self, obj: JSONObject) -> Readiness:
        check = self.registry.get(GroupKind.of(obj))
        if check is None:
            return terminal(f"this executor does not serve {GroupKind.of(obj)}")
        return check(obj, datetime.now(UTC))

    def refusal(self, obj: JSONObject) -> str | None:
        return None


def _failure(ref: ObjectRef, resource: str, error: Exception) -> ActionResult:
    if isinstance(error, UnservedKindError):
        return ActionResult(object=ref, resource=resource, ok=False, error=str(error), terminal=True)
    if isinstance(error, ApiError):
        # 4xx other than throttling/timeouts means the object itself is wrong: retrying cannot help.
        return ActionResult(
            object=ref, resource=resource, ok=False, error=error.message, terminal=not error.retriable
        )
    return ActionResult(object=ref, resource=resource, ok=False, error=f"{type(error).__name__}: {error}")


class ExecutorServicer(executor_pb2_grpc.ExecutorServicer):
    def __init__(self, kube: KubeClient, family: Family) -> None:
        self.kube = kube
        self.family = family

    def registration(self) -> Register:
        return lambda server: executor_pb2_grpc.add_ExecutorServicer_to_server(self, server)

    async def KindsServed(  # noqa: N802 - gRPC method name
        self, request: executor_pb2.KindsServedRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.KindsServedResponse:
        return executor_pb2.KindsServedResponse(
            kinds=[executor_pb2.GroupKind(group=k.group, kind=k.kind) for k in self.family.kinds()]
        )

    async def Assess(  # noqa: N802
        self, request: executor_pb2.AssessRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.AssessResponse:
        return executor_pb2.AssessResponse(
            readiness=[readiness_to_proto(self.family.assess(load(o))) for o in request.objects_json]
        )

    async def Apply(  # noqa: N802
        self, request: executor_pb2.ApplyRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.ApplyResponse:
        bundle = bundle_from_proto(request.bundle)
        actions = [action_from_proto(a) for a in request.actions]
        results = await asyncio.gather(
            *(self._apply(bundle, a) for a in actions if isinstance(a, planner.Apply))
        )
        return executor_pb2.ApplyResponse(results=[result_to_proto(r, o) for r, o in results])

    async def Delete(  # noqa: N802
        self, request: executor_pb2.DeleteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.DeleteResponse:
        bundle = bundle_from_proto(request.bundle)
        actions = [action_from_proto(a) for a in request.actions]
        results = await asyncio.gather(
            *(self._delete(bundle, a) for a in actions if isinstance(a, planner.Delete))
        )
        return executor_pb2.DeleteResponse(results=[result_to_proto(r) for r in results])

    # --- one object -------------------------------------------------------------------------------

    async def _apply(self, bundle: Bundle, action: planner.Apply) -> tuple[ActionResult, Observed | None]:
        obj = action.object
        ref = ObjectRef.of(obj)
        with tracer.start_as_current_span("apply") as span:
            span.set_attributes(
                {
                    "smith.bundle": str(bundle),
                    "smith.resource": action.resource,
                    "smith.kind": str(GroupKind.of(obj)),
                    "smith.action": "apply",
                }
            )
            if refusal := self.family.refusal(obj):
                span.set_attribute("smith.verdict", "Refused")
                failure = ActionResult(
                    object=ref, resource=action.resource, ok=False, error=refusal, terminal=True
                )
                return self._done(failure, bundle, "apply"), None
            try:
                before = action.observed_version
                if action.expect_absent:
                    problem, before = await self._foreign(obj, bundle)
                    if problem:
                        span.set_attribute("smith.verdict", "NotOwned")
                        failure = ActionResult(
                            object=ref, resource=action.resource, ok=False, error=problem, terminal=True
                        )
                        return self._done(failure, bundle, "apply"), None
                applied: JSONObject = await self.kube.apply(obj, field_manager=FIELD_MANAGER)
                if GroupKind.of(obj) == SECRET:
                    applied = await self._drop_foreign_secret_keys(obj, applied)
            except Exception as e:
                failure = _failure(ref, action.resource, e)
                span.set_attribute("smith.error", failure.error)
                return self._done(failure, bundle, "apply"), None
            after = applied["metadata"].get("resourceVersion", "")
            outcome = (
                Outcome.CREATED if not before else Outcome.UNCHANGED if after == before else Outcome.UPDATED
            )
            span.set_attribute("smith.verdict", str(outcome))
            result = ActionResult(object=ObjectRef.of(applied), resource=action.resource, outcome=outcome)
            return self._done(result, bundle, "apply"), Observed(applied, self.family.assess(applied))

    def _done(self, result: ActionResult, bundle: Bundle, action: str) -> ActionResult:
        """Count and log one finished action: one line each, with the trace id (see smith_telemetry)."""
        ref = result.object
        outcome = str(result.outcome) if result.ok else "Failed"
        ACTIONS.labels(kind=ref.kind, action=action, outcome=outcome).inc()
        where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
        fields: dict[str, object] = {
            "bundle": str(bundle),
            "resource": result.resource,
            "action": action,
            "kind": ref.kind,
            "object": where,
            "outcome": outcome,
        }
        if result.ok:
            log.info("%s %s %s", outcome.lower(), ref.kind, where, extra={"fields": fields})
        else:
            fields |= {"error": result.error, "terminal": result.terminal}
            log.warning(
                "%s %s %s failed: %s", action, ref.kind, where, result.error, extra={"fields": fields}
            )
        return result

    async def _foreign(self, obj: JSONObject, bundle: Bundle) -> tuple[str | None, str]:
        """Why an object that exists although we did not observe it must be left alone (None when it
        need not), and its resourceVersion ("" when it does not exist)."""
        meta = obj["metadata"]
        try:
            current = await self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except NotFoundError:
            return None, ""
        return ownership_problem(current, bundle), current["metadata"].get("resourceVersion", "")

    async def _drop_foreign_secret_keys(self, desired: JSONObject, applied: JSONObject) -> JSONObject:
        """A Secret's data is what the Bundle says: keys someone else added are removed."""
        extra = sorted(set(applied.get("data") or {}) - set(desired.get("data") or {}))
        if not extra:
            return applied
        patch = [
            {"op": "remove", "path": f"/data/{key.replace('~', '~0').replace('/', '~1')}"} for key in extra
        ]
        meta = applied["metadata"]
        return await self.kube.patch(
            "v1", "Secret", meta["name"], patch, namespace=meta["namespace"], content_type=JSON_PATCH
        )

    async def _delete(self, bundle: Bundle, action: planner.Delete) -> ActionResult:
        ref = action.object
        with tracer.start_as_current_span("delete") as span:
            span.set_attributes(
                {
                    "smith.bundle": str(bundle),
                    "smith.kind": str(ref.key.group_kind),
                    "smith.action": "delete",
                    "smith.object": ref.name,
                }
            )
            outcome = Outcome.DELETED
            try:
                await self.kube.delete(
                    ref.api_version, ref.kind, ref.name, namespace=ref.namespace, uid=ref.uid
                )
            except (NotFoundError, ConflictError):
                outcome = Outcome.UNCHANGED  # gone already, or replaced by a newer object: not ours
            except Exception as e:
                failure = _failure(ref, action.resource, e)
                span.set_attribute("smith.error", failure.error)
                return self._done(failure, bundle, "delete")
            span.set_attribute("smith.verdict", str(outcome))
            return self._done(
                ActionResult(object=ref, resource=action.resource, outcome=outcome), bundle, "delete"
            )
