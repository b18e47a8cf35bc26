"""Go Smith's leader lock, read: held only while renewed within its lease."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smith_engine.handover import LEADER_ANNOTATION, LOCK_NAME, go_smith_holds

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def lock(record: Any, name: str = LOCK_NAME) -> dict[str, Any]:
    text = record if isinstance(record, str) else json.dumps(record)
    return {"metadata": {"name": name, "namespace": "default", "annotations": {LEADER_ANNOTATION: text}}}


def renewed(seconds_ago: float, lease: Any = 15, holder: str = "node-1-smith") -> dict[str, Any]:
    at = (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"holderIdentity": holder, "leaseDurationSeconds": lease, "renewTime": at}


def test_a_lock_renewed_within_its_lease_is_held_and_says_by_whom() -> None:
    held = go_smith_holds(lock(renewed(5)), NOW)
    assert held is not None
    assert held.until == NOW + timedelta(seconds=10)
    assert "Go Smith holds its leader lock default/smith-leader-elect ('node-1-smith'" in held.reason


@pytest.mark.parametrize(
    "obj",
    [
        lock(renewed(20)),  # ran out
        lock(renewed(1, holder="")),  # released
        lock(renewed(1, lease=0)),
        lock(renewed(1, lease="15")),
        lock("not json"),
        lock(renewed(1), name="other"),
        {"metadata": {"name": LOCK_NAME}},
        None,
    ],
)
def test_anything_else_is_not_held(obj: Any) -> None:
    assert go_smith_holds(obj, NOW) is None
