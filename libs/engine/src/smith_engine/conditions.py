"""Reading Kubernetes-style conditions (`[{type, status, reason, message, …}]`). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smith_engine.model import JSONObject


def by_type(conditions: Any) -> dict[str, Mapping[str, Any]]:
    """A conditions list keyed by type; entries that are not mappings are skipped."""
    return {str(c.get("type")): c for c in conditions or [] if isinstance(c, Mapping)}


def conditions_of(obj: JSONObject) -> dict[str, Mapping[str, Any]]:
    """An object's `status.conditions` keyed by type."""
    return by_type((obj.get("status") or {}).get("conditions"))


def condition_true(obj: JSONObject, kind: str) -> bool:
    """Whether the object's condition `kind` has status "True"."""
    return conditions_of(obj).get(kind, {}).get("status") == "True"
