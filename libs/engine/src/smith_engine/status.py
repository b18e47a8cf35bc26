"""The Bundle's status from the planner's verdicts and the executors' results. Pure.

A condition's `lastTransitionTime` moves only when its status flips, so a reconcile that changes
nothing computes a status equal to the previous one and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from smith_engine.conditions import by_type
from smith_engine.deletion import PendingDeletion
from smith_engine.model import JSONObject, ObjectRef
from smith_engine.planner import Reason, Verdict, VerdictState, verdict_of
from smith_engine.plugins import PluginStatus
from smith_engine.readiness import Readiness
from smith_engine.times import rfc3339


class ConditionType(StrEnum):
    IN_PROGRESS = "InProgress"
    READY = "Ready"
    ERROR = "Error"
    BLOCKED = "Blocked"


class BundleReason(StrEnum):
    INVALID_BUNDLE = "InvalidBundle"
    TERMINAL_ERROR = "TerminalError"
    RETRIABLE_ERROR = "RetriableError"
    ALL_READY = "AllResourcesReady"
    NOT_READY = "ResourcesNotReady"
    CONVERGING = "Converging"
    STUCK = "NoProgressPossible"


class Outcome(StrEnum):
    """What an action did to the cluster."""

    NONE = ""  # failed, or never sent
    CREATED = "Created"
    UPDATED = "Updated"
    UNCHANGED = "Unchanged"
    DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an executor reports for one action."""

    object: ObjectRef
    resource: str = ""
    ok: bool = True
    error: str = ""
    terminal: bool = False
    outcome: Outcome = Outcome.NONE
    readiness: Readiness | None = None  # of the object as the apply left it
    in_the_way: bool = False  # a create found an object of that name that is not the Bundle's to take


def merge_results(verdicts: Sequence[Verdict], results: Sequence[ActionResult]) -> tuple[Verdict, ...]:
    """Verdicts with their resources' action results folded in: a failure is an error, and an applied
    (or found in sync) object's readiness replaces "applying"."""
    by_resource = {r.resource: r for r in results if r.resource and "[" not in r.resource}
    for item in results:  # a forEach resource's objects (`name[object]`): one's failure is the resource's
        if "[" in item.resource and not item.ok:
            failed = replace(item, error=f"{item.resource}: {item.error}")
            by_resource.setdefault(item.resource.partition("[")[0], failed)
    merged = []
    for v in verdicts:
        if (r := by_resource.get(v.resource)) is not None:
            if not r.ok:
                reason = Reason.TERMINAL_ERROR if r.terminal else Reason.RETRIABLE_ERROR
                v = replace(v, state=VerdictState.ERROR, reason=reason, message=r.error)
            elif r.readiness is not None:
                state, reason = verdict_of(r.readiness)
                v = replace(v, state=state, reason=reason, message=r.readiness.message, object=r.object)
        merged.append(v)
    return tuple(merged)


def bundle_status(
    *,
    previous: JSONObject,
    generation: int,
    verdicts: Sequence[Verdict],
    results: Sequence[ActionResult] = (),
    pending: Sequence[PendingDeletion] = (),
    plugins: Sequence[PluginStatus] = (),
    invalid: str = "",
    now: datetime,
) -> dict[str, Any]:
    """The Bundle's new status. `invalid` is the message of an InvalidBundleError, if there was one
    (then nothing was planned, and the objects pending deletion are those the status had)."""
    verdicts = merge_results(verdicts, results)
    stamp = rfc3339(now)
    old_conditions = by_type(previous.get("conditions"))
    conditions = [
        _condition(t, s, r, m, old=old_conditions, stamp=stamp)
        for t, s, r, m in _bundle_conditions(verdicts, results, pending, invalid)
    ]
    old_resources = {
        str(r.get("name")): r for r in previous.get("resourceStatuses") or [] if isinstance(r, Mapping)
    }
    resource_statuses = [
        _resource_status(v, old=by_type(old_resources.get(v.resource, {}).get("conditions")), stamp=stamp)
        for v in verdicts
    ]
    status: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    if resource_statuses:
        status["resourceStatuses"] = resource_statuses
    if invalid:
        if "readyResources" in previous:
            status["readyResources"] = previous["readyResources"]
    else:
        ready = sum(v.state is VerdictState.READY for v in verdicts)
        status["readyResources"] = f"{ready}/{len(verdicts)}"  # for `kubectl get bundles`
    to_delete = previous.get("objectsToDelete") if invalid else [p.as_status() for p in pending]
    if to_delete:
        status["objectsToDelete"] = to_delete
    plugin_statuses = previous.get("pluginStatuses") if invalid else [p.as_status() for p in plugins]
    if plugin_statuses:
        status["pluginStatuses"] = plugin_statuses
    return status


def may_wait(
    verdicts: Sequence[Verdict], results: Sequence[ActionResult], pending: Sequence[PendingDeletion] = ()
) -> bool:
    """Whether a pass's report may wait for the next one, within the status window opened by the last
    status write: the pass leaves the Bundle in progress with nothing to tell at once (every action
    succeeded, no resource is in error, none is waiting to be deleted, some resource is not READY yet).
    A Bundle turned READY, an error or an object in the way is told at once."""
    states = {v.state for v in verdicts}
    return (
        all(r.ok and not r.in_the_way for r in results)
        and not pending
        and VerdictState.ERROR not in states
        and bool(states - {VerdictState.READY})
    )


def _bundle_conditions(
    verdicts: Sequence[Verdict],
    results: Sequence[ActionResult],
    pending: Sequence[PendingDeletion],
    invalid: str,
) -> list[tuple[ConditionType, bool, str, str]]:
    if invalid:
        return [
            (ConditionType.IN_PROGRESS, False, BundleReason.INVALID_BUNDLE, ""),
            (ConditionType.READY, False, BundleReason.INVALID_BUNDLE, ""),
            # TerminalError, as Go Smith said it of a Bundle it could not process: alerts carry over.
            (ConditionType.ERROR, True, BundleReason.TERMINAL_ERROR, invalid),
        ]
    errors = [v for v in verdicts if v.state is VerdictState.ERROR]
    failed_deletes = [r for r in results if not r.resource and not r.ok]
    problems = [f"resource {v.resource!r}: {v.message}" for v in errors]
    problems += [f"deleting {r.object.kind} {r.object.name!r}: {r.error}" for r in failed_deletes]
    kept = [p for p in pending if p.problem]
    problems += [f"deleting {p.object.kind} {p.object.name!r}: {p.problem}" for p in kept]
    terminal = any(v.terminal for v in errors) or any(r.terminal for r in failed_deletes) or bool(kept)
    not_ready = [v.resource for v in verdicts if v.state is not VerdictState.READY]
    ready = not not_ready and not problems
    moving = any(
        v.state is VerdictState.IN_PROGRESS
        or (v.state is VerdictState.ERROR and not v.terminal)
        or v.reason is Reason.REFERENCE_NOT_RESOLVED
        for v in verdicts
    ) or any(not r.terminal for r in failed_deletes)
    error_reason = BundleReason.TERMINAL_ERROR if terminal else BundleReason.RETRIABLE_ERROR
    return [
        (
            ConditionType.IN_PROGRESS,
            not ready and moving,
            BundleReason.CONVERGING
            if moving
            else BundleReason.STUCK
            if not ready
            else BundleReason.ALL_READY,
            f"not ready: {', '.join(not_ready)}" if not ready and moving else "",
        ),
        (
            ConditionType.READY,
            ready,
            BundleReason.ALL_READY if ready else BundleReason.NOT_READY,
            "" if ready else f"not ready: {', '.join(not_ready)}" if not_ready else "",
        ),
        (ConditionType.ERROR, bool(problems), error_reason if problems else "", "; ".join(problems)),
    ]


_RESOURCE_CONDITION_OF: Mapping[VerdictState, ConditionType] = {
    VerdictState.BLOCKED: ConditionType.BLOCKED,
    VerdictState.IN_PROGRESS: ConditionType.IN_PROGRESS,
    VerdictState.READY: ConditionType.READY,
    VerdictState.ERROR: ConditionType.ERROR,
}


def _resource_status(verdict: Verdict, *, old: Mapping[str, Mapping[str, Any]], stamp: str) -> dict[str, Any]:
    active = _RESOURCE_CONDITION_OF[verdict.state]
    conditions = [
        _condition(
            t,
            t is active,
            verdict.reason if t is active else "",
            verdict.message if t is active else "",
            old=old,
            stamp=stamp,
        )
        for t in (ConditionType.BLOCKED, ConditionType.IN_PROGRESS, ConditionType.READY, ConditionType.ERROR)
    ]
    status: dict[str, Any] = {"name": verdict.resource, "conditions": conditions}
    if verdict.object is not None:
        ref = verdict.object
        status["object"] = {
            k: v
            for k, v in (
                ("apiVersion", ref.api_version),
                ("kind", ref.kind),
                ("name", ref.name),
                ("uid", ref.uid),
            )
            if v
        }
    return status


def _condition(
    kind: ConditionType,
    true: bool,
    reason: str,
    message: str,
    *,
    old: Mapping[str, Mapping[str, Any]],
    stamp: str,
) -> dict[str, str]:
    status = "True" if true else "False"
    previous = old.get(kind)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    condition = {"type": str(kind), "status": status, "lastTransitionTime": str(since or stamp)}
    if reason:
        condition["reason"] = str(reason)
    if message:
        condition["message"] = message
    return condition
