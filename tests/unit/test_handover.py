"""Go Smith's leader lock, read: held only while renewed within its lease."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smith_engine.handover import (
    HELD_CONDITION,
    HELD_REASON,
    LEADER_ANNOTATION,
    LOCK_NAME,
    go_smith_holds,
    held_status,
)

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
    assert "Go Smith holds its leader lock default/smith-leader-elect ('node-1-smith')" in held.reason
    later = go_smith_holds(lock(renewed(1)), NOW)
    assert later is not None
    assert later.reason == held.reason, "a renewal says nothing new"


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


GO_SMITH_STATUS = {
    "observedGeneration": 3,
    "conditions": [
        {"type": "InProgress", "status": "True", "reason": "", "lastTransitionTime": "2026-12-07T11:00:00Z"},
        {"type": "Ready", "status": "False", "reason": "", "lastTransitionTime": "2026-12-07T11:00:00Z"},
    ],
    "resourceStatuses": [{"name": "db", "conditions": [{"type": "Blocked", "status": "True"}]}],
}


def test_the_held_condition_is_added_to_go_smiths_status_keeping_all_of_it() -> None:
    status = held_status(GO_SMITH_STATUS, "Go Smith holds it", NOW)
    assert status is not None
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        k: v for k, v in GO_SMITH_STATUS.items() if k != "conditions"
    }
    assert status["conditions"][:2] == GO_SMITH_STATUS["conditions"]
    assert status["conditions"][2] == {
        "type": HELD_CONDITION,
        "status": "True",
        "reason": HELD_REASON,
        "message": "Go Smith holds it",
        "lastTransitionTime": "2026-12-07T12:00:00Z",
    }
    assert held_status(status, "Go Smith holds it", NOW) is None, "said already: nothing to write"
    again = held_status(status, "another holder", NOW)
    assert again is not None
    assert [c["type"] for c in again["conditions"]] == [
        "InProgress",
        "Ready",
        HELD_CONDITION,
    ]
    assert again["conditions"][2]["message"] == "another holder"


@pytest.mark.parametrize("previous", [{}, None, {"conditions": None}, {"conditions": ["junk"]}])
def test_a_bundle_without_conditions_gets_the_held_one_alone(previous: Any) -> None:
    status = held_status(previous, "why", NOW)
    assert status is not None
    assert [c["type"] for c in status["conditions"]] == [HELD_CONDITION]
