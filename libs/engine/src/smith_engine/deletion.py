"""What Smith deletes, and when. Pure.

Every object Smith makes holds a non-controller ownerReference to each object it depends on (as Smith's
Go controller does), so the objects themselves say who depends on whom, even once their resources have
left the Bundle: an object is deleted only when no other object still there depends on it. That orders
both the deletion of objects removed from a Bundle and the teardown of a deleted Bundle (dependents
first; each wave gone before the next starts).

Objects removed from a Bundle are deleted only once every remaining resource is READY. One whose
annotation `smith.atlassian.com/deletionDelay` (a Go duration: `10m`, `1h30m`) is set is kept that long
after Smith first saw it removed; the Bundle's `status.objectsToDelete` lists every pending deletion with
its due time, which is also how the due time survives a restart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smith_engine.model import GROUP, GroupKind, JSONObject, ObjectRef, group_of
from smith_engine.times import parse_rfc3339, rfc3339

FINALIZER = f"{GROUP}/deleteResources"
ORPHAN_FINALIZER = "orphan"  # set by the API server for `kubectl delete --cascade=orphan`
DELETION_DELAY = f"{GROUP}/deletionDelay"

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """A Go duration (`time.ParseDuration`): `10m`, `1h30m`, `1.5h`, `300ms`, `0`. Raises ValueError."""
    if text == "0":
        return timedelta(0)
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 10m, 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


@dataclass(frozen=True, slots=True)
class PendingDeletion:
    """An object the Bundle no longer lists, still in the cluster."""

    object: ObjectRef
    due: datetime | None = None  # soft delete: not before this time
    problem: str = ""  # why Smith will not delete it (a deletionDelay that is not a duration)

    def as_status(self) -> dict[str, str]:
        ref = self.object
        entry = {
            "group": group_of(ref.api_version),
            "version": ref.api_version.rpartition("/")[2],
            "kind": ref.kind,
            "name": ref.name,
            "uid": ref.uid,
        }
        if self.due is not None:
            entry["deletionDue"] = rfc3339(self.due)
        if self.problem:
            entry["message"] = self.problem
        return entry


@dataclass(frozen=True, slots=True)
class Removals:
    pending: tuple[PendingDeletion, ...]
    delete: tuple[ObjectRef, ...]
    wake_after: float | None  # seconds until the next soft-deleted object is due


def owners(obj: JSONObject) -> Iterable[str]:
    """UIDs of the objects `obj` depends on (its non-controller ownerReferences)."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if not ref.get("controller") and ref.get("uid"):
            yield str(ref["uid"])


def being_deleted(obj: JSONObject) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def next_wave(objects: Sequence[JSONObject]) -> list[JSONObject]:
    """The objects no other of `objects` depends on, not already being deleted. When every object is
    held by another (a cycle made by hand) and none is going, all of them: teardown never hangs."""
    held = {uid for o in objects for uid in owners(o)}
    free = [o for o in objects if _uid(o) not in held]
    if not free and not any(being_deleted(o) for o in objects):
        free = list(objects)
    return [o for o in free if not being_deleted(o)]


def removals(
    removed: Sequence[JSONObject], *, previous: Sequence[Any], now: datetime, may_delete: bool
) -> Removals:
    """Objects removed from a Bundle: which are pending, which to delete now (only when `may_delete`,
    i.e. every remaining resource is READY). `previous` is the Bundle's `status.objectsToDelete`."""
    due_before = {
        str(p.get("uid")): due
        for p in previous
        if isinstance(p, Mapping) and (due := parse_rfc3339(p.get("deletionDue"))) is not None
    }
    pending = {_uid(o): _pending(o, due_before, now) for o in removed}
    delete = tuple(
        p.object
        for o in (next_wave(removed) if may_delete else [])
        if not (p := pending[_uid(o)]).problem and (p.due is None or p.due <= now)
    )
    waits = [(p.due - now).total_seconds() for p in pending.values() if p.due is not None and p.due > now]
    ordered = tuple(sorted(pending.values(), key=lambda p: (p.object.kind, p.object.name)))
    return Removals(pending=ordered, delete=delete, wake_after=min(waits) if waits else None)


def kinds_made(bundle: JSONObject) -> frozenset[GroupKind]:
    """The kinds of the objects a Bundle's status says Smith made (a resource's object with a uid) or still
    has to delete, even when its spec is not valid: a teardown waits until all of them are watched, so
    that it never takes "not seen yet" for "not there" (just after a start, before every executor is
    known). Kinds Smith never made (one no executor serves) do not hold a teardown up."""
    status = bundle.get("status") or {}
    made = [r.get("object") for r in status.get("resourceStatuses") or [] if isinstance(r, Mapping)]
    kinds = {GroupKind.of(o) for o in made if isinstance(o, Mapping) and o.get("kind") and o.get("uid")}
    kinds |= {
        GroupKind(str(p.get("group", "")), str(p["kind"]))
        for p in status.get("objectsToDelete") or []
        if isinstance(p, Mapping) and p.get("kind")
    }
    return frozenset(kinds)


def _pending(obj: JSONObject, due_before: Mapping[str, datetime], now: datetime) -> PendingDeletion:
    ref = ObjectRef.of(obj)
    delay = (obj.get("metadata", {}).get("annotations") or {}).get(DELETION_DELAY)
    if delay is None:
        return PendingDeletion(ref)
    try:
        wait = parse_duration(str(delay))
    except ValueError as e:
        return PendingDeletion(ref, problem=f"annotation {DELETION_DELAY}: {e}; the object is kept")
    return PendingDeletion(ref, due=due_before.get(ref.uid) or now + wait)


def _uid(obj: JSONObject) -> str:
    return str(obj.get("metadata", {}).get("uid", ""))
