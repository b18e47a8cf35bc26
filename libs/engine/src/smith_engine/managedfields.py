"""Fields a client-side writer owned, moved to Smith's server-side apply. Pure.

Go Smith wrote objects with plain Create and Update calls under its user agent, so the API server
recorded their fields as owned by manager `smith`, operation Update. Smith writes by server-side apply
(manager `smith`, operation Apply), which removes a field the Bundle stops saying only when no other
manager owns it: without this, a key, a label or an annotation dropped from the Bundle would stay on
every object Go Smith wrote. As client-go's `csaupgrade` does for kubectl, the fields of those Update
entries are moved once into Smith's Apply entry; from then on the apply owns them all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

# The managers whose Update entries are Smith's own earlier writes: Go Smith's user agent (`smith/<v>`).
LEGACY_MANAGERS: Final = frozenset({"smith"})


def _legacy(entry: Mapping[str, Any], legacy: Collection[str]) -> bool:
    return (
        entry.get("manager") in legacy and entry.get("operation") == "Update" and not entry.get("subresource")
    )


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two fieldsV1 sets as one (nested maps of `f:`, `k:`, `v:`, `i:` and `.` keys)."""
    joined = dict(a)
    for key, value in b.items():
        mine = joined.get(key)
        joined[key] = (
            _union(mine, value) if isinstance(mine, Mapping) and isinstance(value, Mapping) else value
        )
    return joined


def upgraded(
    managed: Sequence[Mapping[str, Any]] | None, *, manager: str, legacy: Collection[str] = LEGACY_MANAGERS
) -> list[dict[str, Any]] | None:
    """`managed` (an object's `metadata.managedFields`) with every field the `legacy` managers' Update
    entries own moved into `manager`'s Apply entry (made from the last of them when there is none),
    those entries gone; None when there is nothing to move. Entries of subresources stay as they are."""
    entries = [dict(e) for e in managed or () if isinstance(e, Mapping)]
    old = [e for e in entries if _legacy(e, legacy)]
    if not old:
        return None
    kept = [e for e in entries if not _legacy(e, legacy)]
    mine = next(
        (
            e
            for e in kept
            if e.get("manager") == manager and e.get("operation") == "Apply" and not e.get("subresource")
        ),
        None,
    )
    fields: dict[str, Any] = {}
    for entry in [*old, *([mine] if mine is not None else [])]:
        fields = _union(fields, entry.get("fieldsV1") or {})
    moved = {**(mine or old[-1]), "manager": manager, "operation": "Apply", "fieldsType": "FieldsV1"}
    moved["fieldsV1"] = fields
    if mine is None:
        return [*kept, moved]
    return [moved if e is mine else e for e in kept]
