"""Readiness per kind, as in the design's table, and the registry it lives in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smith_engine.model import GroupKind
from smith_engine.readiness import (
    BUILTIN,
    READY_WHEN_PATH,
    READY_WHEN_VALUE,
    SUPPORT_ENABLED,
    DuplicateKindError,
    Readiness,
    State,
    assess,
    exists,
    merge_registries,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def obj(api_version: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "generation": 2}, **fields}


def conditions(*items: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "conditions": [{"type": t, "status": s, "reason": r, "message": f"{t} says {r}"} for t, s, r in items]
    }


def state(o: dict[str, Any], crd: dict[str, Any] | None = None) -> tuple[State, bool]:
    r = assess(o, now=NOW, crd=crd)
    return r.state, r.terminal


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("settings.k8s.io/v1alpha1", "PodPreset"),
    ],
)
def test_simple_kinds_are_ready_when_they_exist(api_version: str, kind: str) -> None:
    assert state(obj(api_version, kind)) == (State.READY, False)


def deployment(replicas: int = 3, **status: int) -> dict[str, Any]:
    full = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, **status}
    return obj("apps/v1", "Deployment", spec={"replicas": replicas}, status=full)


def test_deployment_is_ready_when_rolled_out() -> None:
    assert state(deployment()) == (State.READY, False)


@pytest.mark.parametrize(
    "status",
    [{"observedGeneration": 1}, {"updatedReplicas": 2}, {"replicas": 4}, {"availableReplicas": 2}],
)
def test_deployment_is_in_progress_until_rolled_out(status: dict[str, int]) -> None:
    assert state(deployment(**status)) == (State.IN_PROGRESS, False)


def test_deployment_without_status_is_in_progress() -> None:
    assert state(obj("apps/v1", "Deployment", spec={"replicas": 1}))[0] is State.IN_PROGRESS


def test_deployment_past_its_progress_deadline_is_a_terminal_error() -> None:
    d = deployment(updatedReplicas=1)
    d["status"].update(conditions(("Progressing", "False", "ProgressDeadlineExceeded")))
    r = assess(d, now=NOW)
    assert (r.state, r.terminal) == (State.ERROR, True)
    assert "ProgressDeadlineExceeded" in r.message


def hpa(able: str, active: str, since: datetime = NOW) -> dict[str, Any]:
    status = conditions(("AbleToScale", able, "R1"), ("ScalingActive", active, "R2"))
    for c in status["conditions"]:
        c["lastTransitionTime"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", status=status)


@pytest.mark.parametrize(
    ("able", "active", "since", "expected"),
    [
        ("True", "True", NOW, (State.READY, False)),
        ("False", "True", NOW, (State.ERROR, False)),
        ("True", "False", NOW - timedelta(minutes=4), (State.IN_PROGRESS, False)),
        ("True", "False", NOW - timedelta(minutes=6), (State.ERROR, False)),
        ("True", "Unknown", NOW, (State.IN_PROGRESS, False)),
    ],
)
def test_hpa_readiness(able: str, active: str, since: datetime, expected: tuple[State, bool]) -> None:
    assert state(hpa(able, active, since)) == expected


def test_hpa_without_conditions_is_in_progress() -> None:
    assert state(obj("autoscaling/v2", "HorizontalPodAutoscaler"))[0] is State.IN_PROGRESS


SC = "servicecatalog.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ((("Ready", "True", "ProvisionedSuccessfully"),), (State.READY, False)),
        ((("Ready", "False", "Provisioning"),), (State.IN_PROGRESS, False)),
        ((("Ready", "False", "UpdatingInstance"),), (State.IN_PROGRESS, False)),
        ((("Ready", "False", "ProvisionRequestInFlight"),), (State.IN_PROGRESS, False)),
        ((("Ready", "False", "StartingInstanceOrphanMitigation"),), (State.IN_PROGRESS, False)),
        ((("Ready", "False", "ErrorFetchingCatalog"),), (State.ERROR, False)),
        (
            (("Ready", "False", "ProvisionCallFailed"), ("Failed", "True", "ProvisionCallFailed")),
            (State.ERROR, True),
        ),
        ((), (State.IN_PROGRESS, False)),
    ],
)
def test_service_instance_readiness(
    items: tuple[tuple[str, str, str], ...], expected: tuple[State, bool]
) -> None:
    assert state(obj(SC, "ServiceInstance", status=conditions(*items))) == expected


def test_service_instance_failure_carries_the_broker_message() -> None:
    r = assess(obj(SC, "ServiceInstance", status=conditions(("Failed", "True", "QuotaExceeded"))), now=NOW)
    assert "QuotaExceeded" in r.message
    assert "Failed says QuotaExceeded" in r.message


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ((("Ready", "True", "InjectedBindResult"),), (State.READY, False)),
        ((("Ready", "False", "Binding"),), (State.IN_PROGRESS, False)),
        ((("Failed", "True", "BindCallFailed"),), (State.ERROR, True)),
    ],
)
def test_service_binding_readiness(
    items: tuple[tuple[str, str, str], ...], expected: tuple[State, bool]
) -> None:
    assert state(obj(SC, "ServiceBinding", status=conditions(*items))) == expected


def crd(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "sleepers.crd.atlassian.com", "annotations": annotations}}


SLEEPER = crd(**{READY_WHEN_PATH: "{$.status.state}", READY_WHEN_VALUE: "Awake"})


def test_custom_resource_is_ready_when_its_field_has_the_value() -> None:
    assert state(obj("crd.atlassian.com/v1", "Sleeper", status={"state": "Awake"}), SLEEPER) == (
        State.READY,
        False,
    )


@pytest.mark.parametrize("status", [{"state": "Sleeping"}, {}])
def test_custom_resource_is_in_progress_until_then(status: dict[str, Any]) -> None:
    assert state(obj("crd.atlassian.com/v1", "Sleeper", status=status), SLEEPER) == (State.IN_PROGRESS, False)


@pytest.mark.parametrize(
    ("path", "value", "status"),
    [
        ("{$.status.ready}", "true", {"ready": True}),  # a boolean, as Go prints it
        ("{.status.replicas}", "3", {"replicas": 3}),
        ("{.status.ratio}", "1.5", {"ratio": 1.5}),
        ("{.status.size}", "1e+06", {"size": 1000000.0}),
        ("{.status.whole}", "3", {"whole": 3.0}),
        ("{.status.phases[*]}", "Bound Ready", {"phases": ["Bound", "Ready"]}),  # several: joined
        (r"{.status.labels.example\.com/state}", "on", {"labels": {"example.com/state": "on"}}),
    ],
)
def test_a_custom_resource_field_is_compared_as_go_smith_printed_it(
    path: str, value: str, status: dict[str, Any]
) -> None:
    """Go Smith compared `CrReadyWhenFieldValue` with the field as client-go's JSONPath prints it:
    a CRD annotated for Go Smith turns Ready here on the same objects."""
    annotated = crd(**{READY_WHEN_PATH: path, READY_WHEN_VALUE: value})
    assert state(obj("x.io/v1", "Thing", status=status), annotated) == (State.READY, False)
    other = dict.fromkeys(status, "something else")
    assert state(obj("x.io/v1", "Thing", status=other), annotated) == (State.IN_PROGRESS, False)


def test_supported_custom_resource_without_readiness_is_ready_when_it_exists() -> None:
    assert state(obj("x.io/v1", "Thing"), crd(**{SUPPORT_ENABLED: "true"})) == (State.READY, False)


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {SUPPORT_ENABLED: "false"},
        {READY_WHEN_PATH: "status.x"},
        {READY_WHEN_PATH: "a[", READY_WHEN_VALUE: "v"},
    ],
)
def test_custom_resource_of_a_crd_not_enabled_is_a_terminal_error(annotations: dict[str, str]) -> None:
    r = assess(obj("x.io/v1", "Thing"), now=NOW, crd=crd(**annotations))
    assert (r.state, r.terminal) == (State.ERROR, True)
    assert "sleepers.crd.atlassian.com" in r.message


def test_unknown_kind_without_crd_is_a_terminal_error() -> None:
    assert state(obj("x.io/v1", "Thing")) == (State.ERROR, True)


def test_merging_registries_refuses_a_duplicate_kind() -> None:
    def other(o: Any, now: datetime) -> Readiness:
        return exists(o, now)

    with pytest.raises(DuplicateKindError) as caught:
        merge_registries(BUILTIN, {GroupKind("", "ConfigMap"): other})
    assert caught.value.group_kind == GroupKind("", "ConfigMap")


def rolled(**status: Any) -> dict[str, Any]:
    return {"observedGeneration": 2, **status}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (rolled(updatedReplicas=3, readyReplicas=3, currentRevision="r2", updateRevision="r2"), State.READY),
        (
            rolled(updatedReplicas=3, readyReplicas=2, currentRevision="r2", updateRevision="r2"),
            State.IN_PROGRESS,
        ),
        (
            rolled(updatedReplicas=3, readyReplicas=3, currentRevision="r1", updateRevision="r2"),
            State.IN_PROGRESS,
        ),
        ({"observedGeneration": 1, "updatedReplicas": 3, "readyReplicas": 3}, State.IN_PROGRESS),
    ],
)
def test_stateful_set_is_ready_once_rolled_out(status: dict[str, Any], expected: State) -> None:
    o = obj("apps/v1", "StatefulSet", spec={"replicas": 3}, status=status)
    assert state(o) == (expected, False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (rolled(desiredNumberScheduled=2, updatedNumberScheduled=2, numberAvailable=2), State.READY),
        (rolled(desiredNumberScheduled=2, updatedNumberScheduled=1, numberAvailable=2), State.IN_PROGRESS),
        (rolled(desiredNumberScheduled=2, updatedNumberScheduled=2, numberAvailable=1), State.IN_PROGRESS),
    ],
)
def test_daemon_set_is_ready_once_rolled_out(status: dict[str, Any], expected: State) -> None:
    assert state(obj("apps/v1", "DaemonSet", status=status)) == (expected, False)


def test_job_is_ready_when_complete_and_failed_is_terminal() -> None:
    assert state(obj("batch/v1", "Job", status={"active": 1})) == (State.IN_PROGRESS, False)
    complete = conditions(("Complete", "True", "Completed"))
    assert state(obj("batch/v1", "Job", status=complete)) == (State.READY, False)
    failed = conditions(("Failed", "True", "BackoffLimitExceeded"))
    assert state(obj("batch/v1", "Job", status=failed)) == (State.ERROR, True)


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Bound", (State.READY, False)),
        ("Pending", (State.IN_PROGRESS, False)),
        ("Lost", (State.ERROR, False)),
    ],
)
def test_claim_is_ready_when_bound(phase: str, expected: tuple[State, bool]) -> None:
    assert state(obj("v1", "PersistentVolumeClaim", status={"phase": phase})) == expected


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
    ],
)
def test_policy_kinds_are_ready_once_they_exist(api_version: str, kind: str) -> None:
    assert state(obj(api_version, kind)) == (State.READY, False)
