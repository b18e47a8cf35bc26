"""Events on the Bundle: one per object created, updated or deleted; errors told once, when new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smith_engine.events import Notice, notices
from smith_engine.model import ObjectRef
from smith_engine.planner import Reason, Verdict, VerdictState
from smith_engine.status import ActionResult, Outcome, bundle_status

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CM = ObjectRef("v1", "ConfigMap", "ns", "settings")
SECRET = ObjectRef("v1", "Secret", "ns", "password")


def failing(message: str) -> Verdict:
    return Verdict("db", VerdictState.ERROR, Reason.RETRIABLE_ERROR, message, object=SECRET)


def ready(name: str = "settings") -> Verdict:
    return Verdict(name, VerdictState.READY, Reason.READY, object=CM)


def test_created_updated_and_deleted_objects_are_normal_events_unchanged_ones_are_not() -> None:
    results = [
        ActionResult(CM, "settings", outcome=Outcome.CREATED),
        ActionResult(SECRET, "db", outcome=Outcome.UPDATED),
        ActionResult(ObjectRef("v1", "Service", "ns", "old"), "", outcome=Outcome.DELETED),
        ActionResult(ObjectRef("v1", "Service", "ns", "same"), "web", outcome=Outcome.UNCHANGED),
    ]
    status = bundle_status(previous={}, generation=1, verdicts=[ready()], results=results, now=T0)
    assert notices({}, status, results) == [
        Notice("Created", "created ConfigMap settings (resource 'settings')"),
        Notice("Updated", "updated Secret password (resource 'db')"),
        Notice("Deleted", "deleted Service old"),
    ]


def test_a_resource_error_is_a_warning_once_and_again_only_when_its_message_changes() -> None:
    first = bundle_status(previous={}, generation=1, verdicts=[failing("quota exceeded")], now=T0)
    told = notices({}, first, [])
    assert told == [Notice("RetriableError", "resource 'db': quota exceeded", warning=True)]
    assert told[0].type == "Warning"

    same = bundle_status(previous=first, generation=1, verdicts=[failing("quota exceeded")], now=T0)
    assert notices(first, same, []) == []

    other = bundle_status(previous=same, generation=1, verdicts=[failing("forbidden")], now=T0)
    assert notices(same, other, []) == [Notice("RetriableError", "resource 'db': forbidden", warning=True)]


def test_an_invalid_bundle_is_one_warning_with_the_validation_message() -> None:
    invalid = bundle_status(previous={}, generation=2, verdicts=[], invalid="cycle: a -> b -> a", now=T0)
    assert notices({}, invalid, []) == [Notice("InvalidBundle", "cycle: a -> b -> a", warning=True)]
    later = bundle_status(
        previous=invalid, generation=2, verdicts=[], invalid="cycle: a -> b -> a", now=T0 + timedelta(1)
    )
    assert notices(invalid, later, []) == []


def test_a_failed_delete_of_a_removed_object_is_a_warning_while_failed_applies_come_from_verdicts() -> None:
    gone = ObjectRef("v1", "Service", "ns", "old")
    results = [
        ActionResult(gone, "", ok=False, error="forbidden"),
        ActionResult(CM, "settings", ok=False, error="invalid"),
    ]
    status = bundle_status(previous={}, generation=1, verdicts=[ready()], results=results, now=T0)
    assert notices({}, status, results) == [
        Notice("RetriableError", "resource 'settings': invalid", warning=True),
        Notice("DeleteFailed", "deleting Service old: forbidden", warning=True),
    ]
