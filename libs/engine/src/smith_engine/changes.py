"""Change detection: when does an object need an apply? Pure.

Smith never compares what it sent with what the server stores field by field: the server rewrites
values into its own normal form (`cpu: "0.5"` is stored as `500m`, `1024Mi` as `1Gi`), fills in
defaults and converts `stringData`. Instead:

- the **desired hash** names what the Bundle asks for (the object Smith would apply);
- the **digest** names an object as stored, without what moves on its own (status, resourceVersion,
  managedFields, generation), so a Deployment rolling out keeps its digest;
- an executor remembers, per object, the digest it last saw *in sync* with a desired hash (after an
  apply, or after a server-side dry run showed that applying would change nothing). An object whose
  digest and desired hash match that memory needs nothing, and costs no request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smith_engine.codec import dumps
from smith_engine.model import JSON, GroupKind, JSONObject
from smith_engine.workloads import replicas_follow_the_bundle

SECRET = GroupKind("", "Secret")
# Changed by the server or other controllers without changing what the object says.
_VOLATILE_METADATA = ("resourceVersion", "managedFields", "generation")


def _canonical(value: JSON) -> bytes:
    return dumps(value, sort_keys=True)


def desired_hash(desired: JSONObject) -> str:
    """A short name for the object Smith wants (references already substituted). A Deployment's replicas
    are left out while they are someone else's (HPA coexistence): an HPA scaling it changes nothing the
    Bundle asks for (its LastAppliedReplicas annotation says what the Bundle asked)."""
    if not replicas_follow_the_bundle(desired):
        spec = {k: v for k, v in (desired.get("spec") or {}).items() if k != "replicas"}
        desired = {**desired, "spec": spec}
    return hashlib.sha256(_canonical(desired)).hexdigest()[:32]


def normalized(obj: JSONObject) -> dict[str, Any]:
    """`obj` without its status and the metadata that moves on its own."""
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    return out


def digest(obj: JSONObject) -> str:
    """A short name for what `obj` says, as the server stores it (see `normalized`)."""
    return hashlib.sha256(_canonical(normalized(obj))).hexdigest()[:32]


def foreign_keys(desired: JSONObject, stored: JSONObject) -> list[str]:
    """Keys of a Secret's `data` the Bundle does not list: a Secret's data is the Bundle's alone."""
    if GroupKind.of(desired) != SECRET:
        return []
    return sorted(set(stored.get("data") or {}) - set(desired.get("data") or {}))


def in_sync(desired: JSONObject, predicted: JSONObject, observed_digest: str) -> bool:
    """Whether applying `desired` changes nothing: `predicted` is the server's dry run of that apply,
    `observed_digest` the digest of the object as observed."""
    return digest(predicted) == observed_digest and not foreign_keys(desired, predicted)


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()  # a field one side of a change does not have


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # `spec.replicas`, `data.mode`, `spec.containers[0].image`
    before: Any  # MISSING when the field is new
    after: Any  # MISSING when the field goes


def changed_fields(a: JSON, b: JSON, *, limit: int = 10) -> list[FieldChange]:
    """Where the normalized objects `a` and `b` differ (at most `limit` places), with both values."""
    found = []
    for change in _differences(
        normalized(a) if isinstance(a, Mapping) else a, normalized(b) if isinstance(b, Mapping) else b, ""
    ):
        found.append(change)
        if len(found) == limit:
            break
    return found


def differing_fields(a: JSON, b: JSON, *, limit: int = 10) -> list[str]:
    """Paths where the normalized objects `a` and `b` differ, at most `limit` of them."""
    return [c.path for c in changed_fields(a, b, limit=limit)]


def _differences(a: JSON, b: JSON, path: str) -> Iterator[FieldChange]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                yield FieldChange(sub, a.get(key, MISSING), b.get(key, MISSING))
            else:
                yield from _differences(a[key], b[key], sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield FieldChange(path or ".", a, b)
