"""Status: Bundle conditions and per-resource statuses from verdicts and results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smith_engine.model import ObjectRef
from smith_engine.planner import Reason, Verdict, VerdictState
from smith_engine.status import ActionResult, bundle_status

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
REF = ObjectRef("v1", "ConfigMap", "ns", "a")


def v(name: str, state: VerdictState, reason: Reason, message: str = "", **kw: Any) -> Verdict:
    return Verdict(resource=name, state=state, reason=reason, message=message, object=REF, **kw)


READY_A = v("a", VerdictState.READY, Reason.READY)
READY_B = v("b", VerdictState.READY, Reason.READY)
BLOCKED_B = v("b", VerdictState.BLOCKED, Reason.DEPENDENCIES_NOT_READY, "waiting for a", blocked_on=("a",))
APPLYING_A = v("a", VerdictState.IN_PROGRESS, Reason.APPLYING)


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == kind)
    return found


def resource_cond(status: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    entry = next(r for r in status["resourceStatuses"] if r["name"] == name)
    found: dict[str, Any] = next(c for c in entry["conditions"] if c["type"] == kind)
    return found


def test_all_ready_makes_the_bundle_ready() -> None:
    s = bundle_status(previous={}, generation=3, verdicts=[READY_A, READY_B], now=T0)
    assert s["observedGeneration"] == 3
    assert [(c["type"], c["status"]) for c in s["conditions"]] == [
        ("InProgress", "False"),
        ("Ready", "True"),
        ("Error", "False"),
    ]


def test_converging_bundle_is_in_progress() -> None:
    s = bundle_status(previous={}, generation=1, verdicts=[APPLYING_A, BLOCKED_B], now=T0)
    assert cond(s, "InProgress")["status"] == "True"
    assert cond(s, "Ready")["status"] == "False"
    assert cond(s, "Ready")["message"] == "not ready: a, b"


def test_blocked_resource_names_its_dependencies() -> None:
    s = bundle_status(previous={}, generation=1, verdicts=[APPLYING_A, BLOCKED_B], now=T0)
    blocked = resource_cond(s, "b", "Blocked")
    assert (blocked["status"], blocked["reason"], blocked["message"]) == (
        "True",
        "DependenciesNotReady",
        "waiting for a",
    )
    assert resource_cond(s, "b", "Ready")["status"] == "False"
    assert next(r for r in s["resourceStatuses"] if r["name"] == "b")["object"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "a",
    }


def test_failed_apply_becomes_a_resource_error() -> None:
    result = ActionResult(
        object=REF, resource="a", ok=False, error="admission webhook said no", terminal=True
    )
    s = bundle_status(previous={}, generation=1, verdicts=[APPLYING_A, BLOCKED_B], results=[result], now=T0)
    err = resource_cond(s, "a", "Error")
    assert (err["status"], err["reason"], err["message"]) == (
        "True",
        "TerminalError",
        "admission webhook said no",
    )
    assert cond(s, "Error")["reason"] == "TerminalError"
    assert "resource 'a': admission webhook said no" in cond(s, "Error")["message"]
    assert cond(s, "InProgress")["status"] == "False"
    assert cond(s, "InProgress")["reason"] == "NoProgressPossible"


def test_retriable_error_keeps_the_bundle_in_progress() -> None:
    flaky = v("a", VerdictState.ERROR, Reason.RETRIABLE_ERROR, "executor unavailable")
    s = bundle_status(previous={}, generation=1, verdicts=[flaky, BLOCKED_B], now=T0)
    assert cond(s, "Error")["reason"] == "RetriableError"
    assert cond(s, "InProgress")["status"] == "True"


def test_failed_deletion_is_a_bundle_error() -> None:
    result = ActionResult(object=ObjectRef("v1", "ConfigMap", "ns", "old"), ok=False, error="forbidden")
    s = bundle_status(previous={}, generation=1, verdicts=[READY_A], results=[result], now=T0)
    assert cond(s, "Ready")["status"] == "False"
    assert "deleting ConfigMap 'old': forbidden" in cond(s, "Error")["message"]


def test_invalid_bundle_is_an_error_with_the_message() -> None:
    s = bundle_status(previous={}, generation=2, verdicts=[], invalid="dependency cycle: a -> b -> a", now=T0)
    err = cond(s, "Error")
    assert (err["status"], err["reason"], err["message"]) == (
        "True",
        "TerminalError",  # as Go Smith
        "dependency cycle: a -> b -> a",
    )
    assert (cond(s, "Ready")["status"], cond(s, "Ready")["reason"]) == ("False", "InvalidBundle")
    assert "resourceStatuses" not in s


def test_transition_time_moves_only_when_the_status_flips() -> None:
    first = bundle_status(previous={}, generation=1, verdicts=[APPLYING_A], now=T0)
    same = bundle_status(previous=first, generation=1, verdicts=[APPLYING_A], now=T1)
    assert same == first
    done = bundle_status(previous=first, generation=1, verdicts=[READY_A], now=T1)
    assert cond(done, "Ready")["lastTransitionTime"] == "2026-11-24T12:01:00Z"
    assert cond(done, "Error")["lastTransitionTime"] == "2026-11-24T12:00:00Z"
    assert resource_cond(done, "a", "Ready")["lastTransitionTime"] == "2026-11-24T12:01:00Z"
    assert resource_cond(done, "a", "Blocked")["lastTransitionTime"] == "2026-11-24T12:00:00Z"
