"""Planner servicer: converts proto <-> model, maps invalid bundles to INVALID_ARGUMENT; nothing else."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import grpc
from opentelemetry import trace
from prometheus_client import Counter
from smith_wire.convert import (
    action_to_proto,
    call_to_proto,
    load,
    observed_from_proto,
    pending_to_proto,
    plugin_from_proto,
    plugin_status_to_proto,
    result_of_plugin,
    settled_to_proto,
    verdict_to_proto,
    wave_to_proto,
)

from smith.v1 import planner_pb2, planner_pb2_grpc
from smith_engine.ahead import plan_ahead
from smith_engine.errors import InvalidBundleError, LimitError
from smith_engine.model import Bundle, GroupKind, JSONObject
from smith_engine.planner import Apply, Observed, plan_bundle, plan_teardown
from smith_engine.planner import Plan as EnginePlan
from smith_engine.plugins import PluginInfo
from smith_engine.servicecatalog import CATALOG_KINDS, parameter_problems
from smith_engine.validation import load_bundle

log = logging.getLogger("smith.planner")
KEPT_BUNDLES = 128  # Bundles kept parsed: a pass asks about the same Bundle once per wave
PLANNED = Counter(
    "smith_planner_resources_planned",
    "Bundle resources planned: each plan counts every resource of its Bundle (with the process's CPU "
    "time, the cost of planning one resource)",
)


Parsed = Bundle | InvalidBundleError | None  # None: being deleted (no valid spec needed)


def _validated(raw: JSONObject, plugins: Mapping[str, PluginInfo]) -> Bundle:
    """The Bundle's model. A Bundle that breaks the validation itself (a field of a type no rule
    expected: it may hold anything) is invalid, said plainly, and the planner goes on."""
    try:
        return load_bundle(raw, plugins=plugins)
    except InvalidBundleError:
        raise
    except Exception as e:
        log.exception(
            "validating %s/%s failed", raw["metadata"].get("namespace"), raw["metadata"].get("name")
        )
        raise InvalidBundleError([LimitError(f"the Bundle could not be read ({type(e).__name__})")]) from None


class PlannerServicer(planner_pb2_grpc.PlannerServicer):
    def __init__(self) -> None:
        self._parsed: OrderedDict[tuple[bytes, bytes], tuple[JSONObject, Parsed]] = OrderedDict()

    async def Plan(  # noqa: N802 - gRPC method name
        self, request: planner_pb2.PlanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> planner_pb2.PlanResponse:
        span = trace.get_current_span()
        raw, parsed = self._parse(request)
        observed = [observed_from_proto(o) for o in request.observed]
        if raw["metadata"].get("deletionTimestamp"):
            # Teardown needs no valid spec: the objects' ownerReferences give the order.
            meta = raw["metadata"]
            plan = plan_teardown(Bundle(meta["namespace"], meta["name"], meta.get("uid", "")), observed)
            span.set_attribute("smith.bundle", f"{meta['namespace']}/{meta['name']}")
            return self._response(plan)
        plugins = {p.name: p for p in map(plugin_from_proto, request.plugins)}
        try:
            if isinstance(parsed, InvalidBundleError):
                raise parsed
            bundle = parsed or _validated(raw, plugins)
        except InvalidBundleError as e:
            span.set_attribute("smith.verdict", "InvalidBundle")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        previous = (raw.get("status") or {}).get("objectsToDelete") or []
        processed = {name: result_of_plugin(r) for name, r in request.processed.items()}
        unfit = parameter_problems(
            bundle, [o.object for o in observed if GroupKind.of(o.object) in CATALOG_KINDS]
        )

        def replan(seen: Sequence[Observed]) -> EnginePlan:
            PLANNED.inc(len(bundle.resources))
            return plan_bundle(
                bundle, seen, previous_pending=previous, plugins=plugins, processed=processed, refused=unfit
            )

        plan = replan(observed)
        span.set_attribute("smith.bundle", str(bundle))
        response = self._response(plan)
        if request.plan_ahead and not plan.plugin_calls:
            ahead = plan_ahead(plan.actions, observed, replan)
            response.ahead.extend(wave_to_proto(w) for w in ahead.waves)
            if ahead.settled is not None:
                response.settled.CopyFrom(settled_to_proto(ahead.settled))
            span.set_attribute("smith.waves_ahead", len(ahead.waves))
        return response

    def _parse(self, request: planner_pb2.PlanRequest) -> tuple[JSONObject, Parsed]:
        """The Bundle as sent, and as validated when it was valid; the same bytes (and plugins) as a
        recent request's are not parsed again (the engine never changes what it is given)."""
        key = (request.bundle_json, b"".join(p.SerializeToString() for p in request.plugins))
        if (known := self._parsed.get(key)) is not None:
            self._parsed.move_to_end(key)
            return known
        raw: JSONObject = load(request.bundle_json)
        bundle: Bundle | InvalidBundleError | None = None
        if not raw["metadata"].get("deletionTimestamp"):
            try:
                bundle = _validated(raw, {p.name: p for p in map(plugin_from_proto, request.plugins)})
            except InvalidBundleError as e:
                bundle = e  # an invalid Bundle is not validated again on every pass
        self._parsed[key] = (raw, bundle)
        if len(self._parsed) > KEPT_BUNDLES:
            self._parsed.popitem(last=False)
        return raw, bundle

    @staticmethod
    def _response(plan: EnginePlan) -> planner_pb2.PlanResponse:
        span = trace.get_current_span()
        span.set_attribute("smith.actions.apply", sum(isinstance(a, Apply) for a in plan.actions))
        span.set_attribute("smith.actions.delete", sum(not isinstance(a, Apply) for a in plan.actions))
        return planner_pb2.PlanResponse(
            actions=[action_to_proto(a) for a in plan.actions],
            verdicts=[verdict_to_proto(v) for v in plan.verdicts],
            order=list(plan.order),
            pending=[pending_to_proto(p) for p in plan.pending],
            wake_after_seconds=plan.wake_after or 0.0,
            finished=plan.finished,
            plugin_calls=[call_to_proto(c) for c in plan.plugin_calls],
            plugin_statuses=[plugin_status_to_proto(s) for s in plan.plugin_statuses],
        )


def register(server: grpc.aio.Server) -> None:
    planner_pb2_grpc.add_PlannerServicer_to_server(PlannerServicer(), server)
