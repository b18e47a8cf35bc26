"""Engine model <-> protobuf messages. Objects travel as JSON bytes: protobuf's Struct would turn
integers into floats."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from smith.v1 import common_pb2 as pb
from smith.v1 import planner_pb2 as planner_pb
from smith.v1 import plugin_pb2 as plugin_pb
from smith_engine.ahead import Settled, Wave
from smith_engine.codec import dumps, loads
from smith_engine.deletion import PendingDeletion
from smith_engine.model import Bundle, JSONObject, ObjectRef
from smith_engine.planner import Action, Apply, Delete, Observed, Reason, Verdict, VerdictState
from smith_engine.plugins import DependencyInput, PluginCall, PluginInfo, PluginResult, PluginStatus
from smith_engine.readiness import Readiness, State
from smith_engine.status import ActionResult, Outcome
from smith_engine.times import parse_rfc3339, rfc3339


def dump(obj: Any) -> bytes:
    return dumps(obj)


def load(data: bytes) -> Any:
    return loads(data) if data else {}


# --- object references ----------------------------------------------------------------------------


def ref_to_proto(ref: ObjectRef) -> pb.ObjectRef:
    return pb.ObjectRef(
        api_version=ref.api_version, kind=ref.kind, namespace=ref.namespace, name=ref.name, uid=ref.uid
    )


def ref_from_proto(msg: pb.ObjectRef) -> ObjectRef:
    return ObjectRef(
        api_version=msg.api_version, kind=msg.kind, namespace=msg.namespace, name=msg.name, uid=msg.uid
    )


def bundle_from_proto(msg: pb.BundleRef) -> Bundle:
    """The Bundle an executor acts for: its identity only, no resources."""
    return Bundle(namespace=msg.namespace, name=msg.name, uid=msg.uid, generation=msg.generation)


# --- readiness ------------------------------------------------------------------------------------

_STATE_TO_PROTO = {
    State.READY: pb.READINESS_STATE_READY,
    State.IN_PROGRESS: pb.READINESS_STATE_IN_PROGRESS,
    State.ERROR: pb.READINESS_STATE_ERROR,
}
_STATE_FROM_PROTO = {v: k for k, v in _STATE_TO_PROTO.items()}


def readiness_to_proto(readiness: Readiness) -> pb.Readiness:
    return pb.Readiness(
        state=_STATE_TO_PROTO[readiness.state], message=readiness.message, terminal=readiness.terminal
    )


def readiness_from_proto(msg: pb.Readiness) -> Readiness:
    state = _STATE_FROM_PROTO.get(msg.state, State.ERROR)
    return Readiness(state=state, message=msg.message, terminal=msg.terminal)


def observed_to_proto(observed: Observed) -> pb.Observed:
    return pb.Observed(
        object_json=dump(observed.object),
        readiness=readiness_to_proto(observed.readiness),
        in_sync_with=observed.in_sync_with,
        last_applied=observed.last_applied,
    )


def observed_from_proto(msg: pb.Observed) -> Observed:
    return Observed(
        object=load(msg.object_json),
        readiness=readiness_from_proto(msg.readiness),
        in_sync_with=msg.in_sync_with,
        last_applied=msg.last_applied,
    )


# --- actions and results --------------------------------------------------------------------------


def action_to_proto(action: Action) -> pb.Action:
    if isinstance(action, Apply):
        return pb.Action(
            resource_name=action.resource,
            apply_object_json=dump(action.object),
            expect_absent=action.expect_absent,
            observed_resource_version=action.observed_version,
            observed_digest=action.observed_digest,
        )
    return pb.Action(resource_name=action.resource, delete=ref_to_proto(action.object))


def action_from_proto(msg: pb.Action) -> Action:
    if msg.WhichOneof("kind") == "apply_object_json":
        return Apply(
            resource=msg.resource_name,
            object=load(msg.apply_object_json),
            expect_absent=msg.expect_absent,
            observed_version=msg.observed_resource_version,
            observed_digest=msg.observed_digest,
        )
    return Delete(object=ref_from_proto(msg.delete), resource=msg.resource_name)


def wave_to_proto(wave: Wave) -> pb.Wave:
    return pb.Wave(
        actions=[action_to_proto(a) for a in wave.actions],
        predicted_json={name: dump(obj) for name, obj in wave.predicted.items()},
    )


def wave_from_proto(msg: pb.Wave) -> Wave:
    actions = tuple(a for a in map(action_from_proto, msg.actions) if isinstance(a, Apply))
    return Wave(actions, {name: load(data) for name, data in msg.predicted_json.items()})


def settled_to_proto(settled: Settled) -> planner_pb.Settled:
    return planner_pb.Settled(
        predicted_json={name: dump(obj) for name, obj in settled.predicted.items()},
        verdicts=[verdict_to_proto(v) for v in settled.verdicts],
    )


def settled_from_proto(msg: planner_pb.Settled) -> Settled:
    predicted = {name: load(data) for name, data in msg.predicted_json.items()}
    return Settled(predicted, tuple(verdict_from_proto(v) for v in msg.verdicts))


def action_target(action: Action) -> tuple[str, str]:
    """(apiVersion, kind) of the object an action is about."""
    if isinstance(action, Apply):
        return str(action.object.get("apiVersion", "")), str(action.object.get("kind", ""))
    return action.object.api_version, action.object.kind


def result_to_proto(result: ActionResult, observed: Observed | None = None) -> pb.ActionResult:
    msg = pb.ActionResult(
        resource_name=result.resource,
        object=ref_to_proto(result.object),
        ok=result.ok,
        error_message=result.error,
        terminal=result.terminal,
        outcome=_OUTCOME_TO_PROTO[result.outcome],
        in_the_way=result.in_the_way,
    )
    if observed is not None:
        msg.observed.CopyFrom(observed_to_proto(observed))
    return msg


def result_from_proto(msg: pb.ActionResult) -> ActionResult:
    return ActionResult(
        object=ref_from_proto(msg.object),
        resource=msg.resource_name,
        ok=msg.ok,
        error=msg.error_message,
        terminal=msg.terminal,
        outcome=_OUTCOME_FROM_PROTO.get(msg.outcome, Outcome.NONE),
        readiness=readiness_from_proto(msg.observed.readiness) if msg.HasField("observed") else None,
        in_the_way=msg.in_the_way,
    )


_OUTCOME_TO_PROTO = {
    Outcome.NONE: pb.OUTCOME_UNSPECIFIED,
    Outcome.CREATED: pb.OUTCOME_CREATED,
    Outcome.UPDATED: pb.OUTCOME_UPDATED,
    Outcome.UNCHANGED: pb.OUTCOME_UNCHANGED,
    Outcome.DELETED: pb.OUTCOME_DELETED,
}
_OUTCOME_FROM_PROTO = {v: k for k, v in _OUTCOME_TO_PROTO.items()}


# --- verdicts -------------------------------------------------------------------------------------

_VERDICT_TO_PROTO = {
    VerdictState.READY: pb.VERDICT_STATE_READY,
    VerdictState.IN_PROGRESS: pb.VERDICT_STATE_IN_PROGRESS,
    VerdictState.BLOCKED: pb.VERDICT_STATE_BLOCKED,
    VerdictState.ERROR: pb.VERDICT_STATE_ERROR,
}
_VERDICT_FROM_PROTO = {v: k for k, v in _VERDICT_TO_PROTO.items()}


def verdict_to_proto(verdict: Verdict) -> pb.Verdict:
    msg = pb.Verdict(
        resource_name=verdict.resource,
        state=_VERDICT_TO_PROTO[verdict.state],
        reason=verdict.reason.value,
        message=verdict.message,
        terminal=verdict.terminal,
        blocked_on=list(verdict.blocked_on),
    )
    if verdict.object is not None:
        msg.object.CopyFrom(ref_to_proto(verdict.object))
    return msg


def verdict_from_proto(msg: pb.Verdict) -> Verdict:
    return Verdict(
        resource=msg.resource_name,
        state=_VERDICT_FROM_PROTO.get(msg.state, VerdictState.ERROR),
        reason=Reason(msg.reason),
        message=msg.message,
        blocked_on=tuple(msg.blocked_on),
        object=ref_from_proto(msg.object) if msg.HasField("object") else None,
    )


def objects_json(objects: Iterable[JSONObject]) -> list[bytes]:
    return [dump(o) for o in objects]


def pending_to_proto(pending: PendingDeletion) -> pb.PendingDeletion:
    due = rfc3339(pending.due) if pending.due is not None else ""
    return pb.PendingDeletion(object=ref_to_proto(pending.object), due=due, problem=pending.problem)


def pending_from_proto(msg: pb.PendingDeletion) -> PendingDeletion:
    return PendingDeletion(ref_from_proto(msg.object), due=parse_rfc3339(msg.due), problem=msg.problem)


# --- plugins --------------------------------------------------------------------------------------


def plugin_to_proto(info: PluginInfo) -> plugin_pb.DescribeResponse:
    return plugin_pb.DescribeResponse(
        name=info.name, api_version=info.api_version, kind=info.kind, spec_schema_json=json.dumps(info.schema)
    )


def plugin_from_proto(msg: plugin_pb.DescribeResponse, endpoint: str = "") -> PluginInfo:
    schema = json.loads(msg.spec_schema_json) if msg.spec_schema_json else {}
    return PluginInfo(msg.name, endpoint, msg.api_version, msg.kind, schema)


def call_to_proto(call: PluginCall) -> plugin_pb.ProcessRequest:
    return plugin_pb.ProcessRequest(
        resource_name=call.resource,
        plugin=call.plugin,
        spec_json=dump(call.spec),
        actual_json=dump(call.actual) if call.actual is not None else b"",
        dependencies=[
            plugin_pb.Dependency(
                resource_name=d.resource,
                spec_json=dump(d.spec),
                actual_json=dump(d.actual),
                outputs_json=dump(dict(d.outputs)) if d.outputs else b"",
                auxiliary_json=dump(d.auxiliary) if d.auxiliary is not None else b"",
            )
            for d in call.dependencies
        ],
    )


def call_from_proto(msg: plugin_pb.ProcessRequest) -> PluginCall:
    dependencies = tuple(
        DependencyInput(
            d.resource_name,
            load(d.spec_json),
            load(d.actual_json),
            load(d.outputs_json),
            load(d.auxiliary_json) or None,
        )
        for d in msg.dependencies
    )
    return PluginCall(
        msg.resource_name, msg.plugin, load(msg.spec_json), load(msg.actual_json) or None, dependencies
    )


def result_of_plugin(msg: plugin_pb.ProcessResponse) -> PluginResult:
    if msg.error_message or not msg.object_json:
        return PluginResult(
            error=msg.error_message or "the plugin returned no object", retriable=msg.retriable
        )
    return PluginResult(load(msg.object_json))


def plugin_status_to_proto(status: PluginStatus) -> plugin_pb.PluginStatus:
    return plugin_pb.PluginStatus(
        name=status.name, api_version=status.api_version, kind=status.kind, status=status.status
    )


def plugin_status_from_proto(msg: plugin_pb.PluginStatus) -> PluginStatus:
    return PluginStatus(msg.name, msg.api_version, msg.kind, msg.status)
