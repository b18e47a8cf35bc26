"""What to tell about one reconcile as Kubernetes Events on the Bundle, like native controllers and
Smith's Go controller do. Pure.

Every object created, updated or deleted is one Normal event (Created, Updated, Deleted). A condition
that becomes True (or changes its reason; an Error also when its message changes) is a transition: it is
counted in Smith's metrics, and told as Smith tells it: BundleReady, BundleInProgress, BundleError,
ResourceReady, ResourceInProgress, ResourceError (errors are Warnings; a resource becoming Blocked is
counted, not told), annotated with `smith.atlassian.com/Reason` and `smith.atlassian.com/ResourceName`.

Told as client-go's recorder (which Smith's Go controller posted through) tells them: an Event like one
told before is the same Event told again (its count raised), and past ten similar ones on a Bundle (same
type and reason, another message) within ten minutes the rest are one Event "(combined from similar
events): ...", its count raised for each. `Correlator` decides which Event a notice is told as.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from smith_engine.conditions import by_type
from smith_engine.model import GROUP, JSONObject
from smith_engine.status import ActionResult, ConditionType, Outcome

_TOLD = (Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED)
REASON_ANNOTATION = f"{GROUP}/Reason"
RESOURCE_ANNOTATION = f"{GROUP}/ResourceName"


@dataclass(frozen=True, slots=True)
class Notice:
    """One Event to post on the Bundle."""

    reason: str
    message: str
    warning: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return "Warning" if self.warning else "Normal"


@dataclass(frozen=True, slots=True)
class Transition:
    """A condition of the Bundle (`resource` "") or of one of its resources that became True."""

    type: str
    reason: str
    message: str
    resource: str = ""

    @property
    def notice(self) -> Notice | None:
        if self.type == ConditionType.BLOCKED:
            return None  # too frequent to tell (as in Smith); counted all the same
        annotations = {REASON_ANNOTATION: self.reason}
        if self.resource:
            annotations[RESOURCE_ANNOTATION] = self.resource
        reason = f"{'Resource' if self.resource else 'Bundle'}{self.type}"
        said = self.message or self.reason  # a Ready condition has no message: say its reason
        message = f"resource {self.resource!r}: {said}" if self.resource else said
        return Notice(reason, message, self.type == ConditionType.ERROR, annotations)


def transitions(previous: JSONObject, status: JSONObject) -> list[Transition]:
    """The conditions that became True from `previous` status to `status`, the Bundle's first."""
    found = _became_true(previous, status, "")
    before = {str(r.get("name")): r for r in _resources(previous)}
    for item in _resources(status):
        name = str(item.get("name"))
        found += _became_true(before.get(name, {}), item, name)
    return found


def notices(
    previous: JSONObject,
    status: JSONObject,
    results: Sequence[ActionResult],
    moved: Sequence[Transition] | None = None,
) -> list[Notice]:
    """The events of one reconcile that turned `previous` status into `status` with `results`; `moved`
    is `transitions(previous, status)` when the caller has it already."""
    told = [
        Notice(str(r.outcome), f"{r.outcome.lower()} {r.object.kind} {r.object.name}{_for(r.resource)}")
        for r in results
        if r.ok and r.outcome in _TOLD
    ]
    moved = transitions(previous, status) if moved is None else moved
    told += [n for t in moved if (n := t.notice) is not None]
    if _error(status) != _error(previous):
        told += [
            Notice("DeleteFailed", f"deleting {r.object.kind} {r.object.name}: {r.error}", True)
            for r in results
            if not r.ok and not r.resource
        ]
    return told


def _became_true(before: Mapping[str, Any], after: Mapping[str, Any], resource: str) -> list[Transition]:
    old = by_type(before.get("conditions"))
    found = []
    for kind, condition in by_type(after.get("conditions")).items():
        if condition.get("status") != "True":
            continue
        was = old.get(kind) or {}
        fields = ("status", "reason", "message") if kind == ConditionType.ERROR else ("status", "reason")
        if any(was.get(f) != condition.get(f) for f in fields):
            found.append(
                Transition(
                    str(kind), str(condition.get("reason", "")), str(condition.get("message", "")), resource
                )
            )
    return found


def _resources(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in status.get("resourceStatuses") or [] if isinstance(r, Mapping)]


def _for(resource: str) -> str:
    return f" (resource {resource!r})" if resource else ""


def _error(holder: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Error condition of a status or resource status, when it is True."""
    error = by_type(holder.get("conditions")).get(ConditionType.ERROR)
    return error if error is not None and error.get("status") == "True" else None


# client-go's defaults (tools/record/events_cache.go), so a Bundle's Events read as Smith's Go ones did
SIMILAR_BEFORE_COMBINED = 10
SIMILAR_WINDOW_SECONDS = 600.0
REMEMBERED = 4096
COMBINED = "(combined from similar events): "


@dataclass(frozen=True, slots=True)
class Told:
    """Which Event a notice is told as: `key` names it (the same key, the same Event, its count
    raised), `message` is what the Event says now; `combined`: it stands for several notices."""

    key: tuple[str, ...]
    message: str
    combined: bool = False

    def notice(self, notice: Notice) -> Notice:
        """`notice` as this Event tells it: a combined one is about several resources and reasons, so
        it carries neither Smith annotation (which would name only one of them)."""
        annotations = {} if self.combined else notice.annotations
        return replace(notice, message=self.message, annotations=annotations)


class Correlator:
    """client-go's EventCorrelator (its aggregator and its logger), without its spam filter: no Event
    is dropped, and what would be dropped is mostly a count raised, which the recorder coalesces.
    Pure: the caller gives the time. Remembers at most `remembered` kinds of Event, least recent out."""

    def __init__(
        self,
        *,
        combine_after: int = SIMILAR_BEFORE_COMBINED,
        window: float = SIMILAR_WINDOW_SECONDS,
        remembered: int = REMEMBERED,
    ) -> None:
        self._after, self._window, self._remembered = combine_after, window, remembered
        self._similar: OrderedDict[tuple[str, ...], tuple[float, set[str]]] = OrderedDict()

    def told(self, similar: tuple[str, ...], message: str, *, now: float) -> Told:
        """`similar`: what makes Events similar (the Bundle, the type, the reason, the reporter)."""
        last, messages = self._similar.pop(similar, (now, set()))
        if now - last > self._window:
            messages = set()
        self._similar[similar] = (now, messages)
        if len(self._similar) > self._remembered:
            self._similar.popitem(last=False)
        if message in messages or len(messages) < self._after - 1:
            messages.add(message)
            return Told((*similar, "message", message), message)
        return Told((*similar, "combined"), COMBINED + message, combined=True)
