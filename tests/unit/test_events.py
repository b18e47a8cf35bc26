"""Events on the Bundle: one per object created, updated or deleted; Smith's transition events
(BundleReady, ResourceError, ...) told once per transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smith_engine.events import (
    COMBINED,
    REASON_ANNOTATION,
    RESOURCE_ANNOTATION,
    SIMILAR_WINDOW_SECONDS,
    Correlator,
    Notice,
    notices,
    transitions,
)
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
    assert notices({}, status, results)[:3] == [
        Notice("Created", "created ConfigMap settings (resource 'settings')"),
        Notice("Updated", "updated Secret password (resource 'db')"),
        Notice("Deleted", "deleted Service old"),
    ]


def names(told: list[Notice]) -> list[tuple[str, str, dict[str, str]]]:
    return [(n.type, n.reason, dict(n.annotations)) for n in told]


def test_transitions_are_told_as_smith_tells_them_once_each() -> None:
    blocked = Verdict("app", VerdictState.BLOCKED, Reason.DEPENDENCIES_NOT_READY, "waiting for db")
    rolling = Verdict("db", VerdictState.IN_PROGRESS, Reason.WAITING, "rolling out")
    first = bundle_status(previous={}, generation=1, verdicts=[ready(), rolling, blocked], now=T0)
    assert names(notices({}, first, [])) == [
        ("Normal", "BundleInProgress", {REASON_ANNOTATION: "Converging"}),
        ("Normal", "ResourceReady", {REASON_ANNOTATION: "Ready", RESOURCE_ANNOTATION: "settings"}),
        (
            "Normal",
            "ResourceInProgress",
            {REASON_ANNOTATION: "WaitingForReadiness", RESOURCE_ANNOTATION: "db"},
        ),
    ], "a resource becoming Blocked is not told"
    assert [(t.resource, t.type, t.reason) for t in transitions({}, first)][-1] == (
        "app",
        "Blocked",
        "DependenciesNotReady",
    ), "but it is counted"
    again = bundle_status(previous=first, generation=1, verdicts=[ready(), rolling, blocked], now=T0)
    assert transitions(first, again) == [], "nothing moved: nothing told, nothing counted"

    verdicts = [ready(), ready("db"), ready("app")]
    done = bundle_status(previous=again, generation=1, verdicts=verdicts, now=T0)
    assert names(notices(again, done, [])) == [
        ("Normal", "BundleReady", {REASON_ANNOTATION: "AllResourcesReady"}),
        ("Normal", "ResourceReady", {REASON_ANNOTATION: "Ready", RESOURCE_ANNOTATION: "db"}),
        ("Normal", "ResourceReady", {REASON_ANNOTATION: "Ready", RESOURCE_ANNOTATION: "app"}),
    ]


def test_a_resource_error_is_a_warning_once_and_again_only_when_its_message_changes() -> None:
    first = bundle_status(previous={}, generation=1, verdicts=[failing("quota exceeded")], now=T0)
    errors = [n for n in notices({}, first, []) if n.warning]
    assert [(n.reason, n.message) for n in errors] == [
        ("BundleError", "resource 'db': quota exceeded"),
        ("ResourceError", "resource 'db': quota exceeded"),
    ], "errors are warnings"
    assert errors[1].annotations == {REASON_ANNOTATION: "RetriableError", RESOURCE_ANNOTATION: "db"}
    assert errors[0].type == "Warning"

    same = bundle_status(previous=first, generation=1, verdicts=[failing("quota exceeded")], now=T0)
    assert notices(first, same, []) == []

    other = bundle_status(previous=same, generation=1, verdicts=[failing("forbidden")], now=T0)
    assert [n.reason for n in notices(same, other, []) if n.warning] == ["BundleError", "ResourceError"]


def test_an_invalid_bundle_is_one_warning_with_the_validation_message() -> None:
    invalid = bundle_status(previous={}, generation=2, verdicts=[], invalid="cycle: a -> b -> a", now=T0)
    assert notices({}, invalid, []) == [
        Notice(
            "BundleError",
            "cycle: a -> b -> a",
            warning=True,
            annotations={REASON_ANNOTATION: "TerminalError"},
        )
    ]
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
    told = notices({}, status, results)
    assert [n.reason for n in told if n.warning] == ["BundleError", "ResourceError", "DeleteFailed"]
    assert told[-1] == Notice("DeleteFailed", "deleting Service old: forbidden", warning=True)


SIMILAR = ("ns", "web", "uid-1", "Normal", "Created", "smith-0")


def test_an_event_told_again_is_the_same_event() -> None:
    correlator = Correlator()
    first = correlator.told(SIMILAR, "created ConfigMap a", now=0.0)
    assert correlator.told(SIMILAR, "created ConfigMap a", now=1.0) == first
    assert correlator.told(SIMILAR, "created ConfigMap b", now=1.0).key != first.key


def test_past_nine_similar_events_the_rest_are_one_combined_event_as_client_go_tells_them() -> None:
    correlator = Correlator()
    told = [correlator.told(SIMILAR, f"created ConfigMap c{i}", now=float(i)) for i in range(30)]
    assert [t.message for t in told[:9]] == [f"created ConfigMap c{i}" for i in range(9)]
    assert len({t.key for t in told[:9]}) == 9
    assert {t.key for t in told[9:]} == {told[9].key}, "one Event for all the rest"
    assert told[29].message == f"{COMBINED}created ConfigMap c29"
    again = correlator.told(SIMILAR, "created ConfigMap c3", now=30.0)
    assert again == told[3], "one told on its own before still is"
    other = correlator.told((*SIMILAR[:4], "ResourceReady", SIMILAR[5]), "resource 'c20': Ready", now=30.0)
    assert not other.message.startswith(COMBINED), "another reason is not similar"


def test_similar_events_are_combined_only_within_ten_minutes_of_the_last() -> None:
    correlator = Correlator()
    for i in range(12):
        correlator.told(SIMILAR, f"created ConfigMap c{i}", now=float(i))
    later = correlator.told(SIMILAR, "created ConfigMap late", now=11.0 + SIMILAR_WINDOW_SECONDS + 1)
    assert later.message == "created ConfigMap late"


def test_the_correlator_forgets_the_least_recent_beyond_what_it_remembers() -> None:
    correlator = Correlator(remembered=2)
    for i in range(9):
        correlator.told(SIMILAR, f"m{i}", now=0.0)
    correlator.told(("b",), "x", now=0.0)
    correlator.told(("c",), "x", now=0.0)
    assert correlator.told(SIMILAR, "m9", now=0.0).message == "m9", "forgotten: nine similar no more"


def test_a_combined_event_names_no_single_resource() -> None:
    correlator = Correlator()
    ready = [
        Notice("ResourceReady", f"resource 'c{i}': Ready", annotations={RESOURCE_ANNOTATION: f"c{i}"})
        for i in range(10)
    ]
    told = [correlator.told(SIMILAR, n.message, now=0.0) for n in ready]
    assert told[0].notice(ready[0]) == ready[0]
    combined = told[9].notice(ready[9])
    assert combined.message == f"{COMBINED}resource 'c9': Ready"
    assert combined.annotations == {}, "it stands for several resources"
