"""What to tell about one reconcile as Kubernetes Events on the Bundle, like native controllers do. Pure.

Every object created, updated or deleted is one Normal event. Errors are Warning events, told once:
when they first appear or their message changes, not on every retry of the same failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smith_engine.conditions import by_type
from smith_engine.model import JSONObject
from smith_engine.status import ActionResult, BundleReason, ConditionType, Outcome

_TOLD = (Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED)


@dataclass(frozen=True, slots=True)
class Notice:
    """One Event to post on the Bundle."""

    reason: str
    message: str
    warning: bool = False

    @property
    def type(self) -> str:
        return "Warning" if self.warning else "Normal"


def notices(previous: JSONObject, status: JSONObject, results: Sequence[ActionResult]) -> list[Notice]:
    """The events of one reconcile that turned `previous` status into `status` with `results`."""
    told = [
        Notice(str(r.outcome), f"{r.outcome.lower()} {r.object.kind} {r.object.name}{_for(r.resource)}")
        for r in results
        if r.ok and r.outcome in _TOLD
    ]
    bundle_error = _error(status)
    if bundle_error and bundle_error.get("reason") == BundleReason.INVALID_BUNDLE:
        if bundle_error != _error(previous):
            told.append(Notice(BundleReason.INVALID_BUNDLE, str(bundle_error.get("message", "")), True))
        return told
    before = _resource_errors(previous)
    for name, error in _resource_errors(status).items():
        if before.get(name) != error:
            reason = str(error.get("reason") or BundleReason.RETRIABLE_ERROR)
            told.append(Notice(reason, f"resource {name!r}: {error.get('message', '')}", True))
    if bundle_error != _error(previous):
        told += [
            Notice("DeleteFailed", f"deleting {r.object.kind} {r.object.name}: {r.error}", True)
            for r in results
            if not r.ok and not r.resource
        ]
    return told


def _for(resource: str) -> str:
    return f" (resource {resource!r})" if resource else ""


def _error(holder: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Error condition of a status or resource status, when it is True."""
    error = by_type(holder.get("conditions")).get(ConditionType.ERROR)
    return error if error is not None and error.get("status") == "True" else None


def _resource_errors(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for item in status.get("resourceStatuses") or []:
        if isinstance(item, Mapping) and (error := _error(item)) is not None:
            found[str(item.get("name"))] = {"reason": error.get("reason"), "message": error.get("message")}
    return found
