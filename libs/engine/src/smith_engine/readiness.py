"""Readiness: is an object READY, still IN_PROGRESS, or in ERROR (terminal or retriable)?

Per-kind knowledge is data: a registry from group/kind to a pure check. Custom resources get their
check from their CRD's annotations. Checks take the clock as an argument; they never read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from smith_engine.conditions import conditions_of
from smith_engine.model import GROUP, GroupKind, JSONObject
from smith_engine.references import PathSyntaxError, compile_path, go_text, values_at
from smith_engine.servicecatalog import SERVICE_BINDING, SERVICE_INSTANCE
from smith_engine.times import parse_rfc3339


class State(StrEnum):
    READY = "Ready"
    IN_PROGRESS = "InProgress"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class Readiness:
    state: State
    message: str = ""
    terminal: bool = False  # only for ERROR: retrying cannot help until the Bundle changes

    @property
    def ready(self) -> bool:
        return self.state is State.READY


READY: Final = Readiness(State.READY)


def in_progress(message: str) -> Readiness:
    return Readiness(State.IN_PROGRESS, message)


def retriable(message: str) -> Readiness:
    return Readiness(State.ERROR, message, terminal=False)


def terminal(message: str) -> Readiness:
    return Readiness(State.ERROR, message, terminal=True)


ReadinessCheck = Callable[[JSONObject, datetime], Readiness]


class DuplicateKindError(ValueError):
    def __init__(self, group_kind: GroupKind) -> None:
        super().__init__(f"readiness for {group_kind} is registered twice")
        self.group_kind = group_kind


def merge_registries(*registries: Mapping[GroupKind, ReadinessCheck]) -> dict[GroupKind, ReadinessCheck]:
    """One registry from several; a kind registered twice is an error, never a silent override."""
    merged: dict[GroupKind, ReadinessCheck] = {}
    for registry in registries:
        for group_kind, check in registry.items():
            if group_kind in merged:
                raise DuplicateKindError(group_kind)
            merged[group_kind] = check
    return merged


# --- helpers --------------------------------------------------------------------------------------


def _describe(condition: Mapping[str, Any]) -> str:
    parts = [str(condition.get(k)) for k in ("reason", "message") if condition.get(k)]
    return ": ".join(parts) or f"{condition.get('type')} is {condition.get('status')}"


# --- checks ---------------------------------------------------------------------------------------


def exists(obj: JSONObject, now: datetime) -> Readiness:
    """READY as soon as the object exists."""
    return READY


def deployment(obj: JSONObject, now: datetime) -> Readiness:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    progressing = conditions_of(obj).get("Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return terminal(f"rollout failed: {_describe(progressing)}")
    if not _observed(obj):
        return in_progress(NOT_OBSERVED)
    wanted = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    replicas = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated != wanted:
        return in_progress(f"{updated} of {wanted} replicas updated")
    if replicas != updated:
        return in_progress(f"{replicas - updated} old replicas pending termination")
    if available != updated:
        return in_progress(f"{available} of {updated} updated replicas available")
    return READY


NOT_OBSERVED: Final = "the controller has not observed the latest generation yet"


def _observed(obj: JSONObject) -> bool:
    """The workload's controller has seen its latest spec."""
    generation = int(obj.get("metadata", {}).get("generation", 0))
    return int((obj.get("status") or {}).get("observedGeneration", 0)) >= generation


def _rolled_out(obj: JSONObject, *counts: tuple[int, int, str]) -> Readiness:
    """In progress until the controller has seen the latest spec and each (have, want, what) matches."""
    if not _observed(obj):
        return in_progress(NOT_OBSERVED)
    for have, want, what in counts:
        if have != want:
            return in_progress(f"{have} of {want} {what}")
    return READY


def stateful_set(obj: JSONObject, now: datetime) -> Readiness:
    """Rolled out: every replica updated and ready, and the current revision is the update revision."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    counts = [(int(status.get(f"{k}Replicas", 0)), wanted, f"replicas {k}") for k in ("updated", "ready")]
    if (rolled := _rolled_out(obj, *counts)) is not READY:
        return rolled
    if status.get("currentRevision") != status.get("updateRevision"):
        return in_progress(f"revision {status.get('updateRevision')} is not current yet")
    return READY


def daemon_set(obj: JSONObject, now: datetime) -> Readiness:
    """Rolled out: on every node it should run on, the updated pod is scheduled and available."""
    status = obj.get("status") or {}
    wanted = int(status.get("desiredNumberScheduled", 0))
    return _rolled_out(
        obj,
        (int(status.get("updatedNumberScheduled", 0)), wanted, "pods updated"),
        (int(status.get("numberAvailable", 0)), wanted, "pods available"),
    )


def _finished(obj: JSONObject, *, done: str, failure: str) -> Readiness | None:
    """READY when condition `done` is True, a terminal error when `Failed` is; None while neither."""
    conditions = conditions_of(obj)
    failed, finished = conditions.get("Failed"), conditions.get(done)
    if failed and failed.get("status") == "True":
        return terminal(f"{failure}: {_describe(failed)}")
    if finished and finished.get("status") == "True":
        return READY
    return None


def job(obj: JSONObject, now: datetime) -> Readiness:
    """READY when Complete; Failed is terminal (a Job is not retried once it gave up)."""
    if (verdict := _finished(obj, done="Complete", failure="job failed")) is not None:
        return verdict
    active = int((obj.get("status") or {}).get("active", 0))
    return in_progress(f"running ({active} active pods)")


def persistent_volume_claim(obj: JSONObject, now: datetime) -> Readiness:
    phase = (obj.get("status") or {}).get("phase", "Pending")
    if phase == "Bound":
        return READY
    if phase == "Lost":
        return retriable("the claim lost its volume")
    return in_progress(f"phase {phase}: waiting for a volume")


SCALING_INACTIVE_GRACE: Final = timedelta(minutes=5)


def horizontal_pod_autoscaler(obj: JSONObject, now: datetime) -> Readiness:
    conditions = conditions_of(obj)
    able, active = conditions.get("AbleToScale"), conditions.get("ScalingActive")
    if able is None or active is None:
        return in_progress("waiting for the AbleToScale and ScalingActive conditions")
    if able.get("status") == "False":
        return retriable(f"AbleToScale is False: {_describe(able)}")
    if active.get("status") == "False":
        since = parse_rfc3339(active.get("lastTransitionTime"))
        if since is not None and now - since > SCALING_INACTIVE_GRACE:
            return retriable(f"ScalingActive has been False for over 5 minutes: {_describe(active)}")
        return in_progress(f"ScalingActive is False: {_describe(active)}")
    if able.get("status") == "True" and active.get("status") == "True":
        return READY
    return in_progress("AbleToScale and ScalingActive are not both True yet")


_INSTANCE_IN_FLIGHT: Final = frozenset(
    {"Provisioning", "UpdatingInstance", "Deprovisioning", "StartingInstanceOrphanMitigation"}
)


def service_instance(obj: JSONObject, now: datetime) -> Readiness:
    conditions = conditions_of(obj)
    failed, ready = conditions.get("Failed"), conditions.get("Ready")
    if failed and failed.get("status") == "True":
        return terminal(f"provisioning failed: {_describe(failed)}")
    if ready is None:
        return in_progress("waiting for the Ready condition")
    if ready.get("status") == "True":
        return READY
    reason = str(ready.get("reason", ""))
    if reason in _INSTANCE_IN_FLIGHT or reason.endswith("RequestInFlight"):
        return in_progress(_describe(ready))
    return retriable(f"not ready: {_describe(ready)}")


def service_binding(obj: JSONObject, now: datetime) -> Readiness:
    if (verdict := _finished(obj, done="Ready", failure="binding failed")) is not None:
        return verdict
    ready = conditions_of(obj).get("Ready")
    return in_progress(_describe(ready) if ready else "waiting for the Ready condition")


BUILTIN: Final[Mapping[GroupKind, ReadinessCheck]] = {
    GroupKind("", "ConfigMap"): exists,
    GroupKind("", "Secret"): exists,
    GroupKind("", "Service"): exists,
    GroupKind("", "ServiceAccount"): exists,
    GroupKind("networking.k8s.io", "Ingress"): exists,
    GroupKind("extensions", "Ingress"): exists,
    GroupKind("policy", "PodDisruptionBudget"): exists,
    GroupKind("settings.k8s.io", "PodPreset"): exists,
    GroupKind("apps", "Deployment"): deployment,
    GroupKind("extensions", "Deployment"): deployment,
    GroupKind("autoscaling", "HorizontalPodAutoscaler"): horizontal_pod_autoscaler,
    GroupKind("apps", "StatefulSet"): stateful_set,
    GroupKind("apps", "DaemonSet"): daemon_set,
    GroupKind("batch", "Job"): job,
    GroupKind("", "PersistentVolumeClaim"): persistent_volume_claim,
    GroupKind("networking.k8s.io", "NetworkPolicy"): exists,
    GroupKind("rbac.authorization.k8s.io", "Role"): exists,
    GroupKind("rbac.authorization.k8s.io", "RoleBinding"): exists,
    GroupKind("", "ResourceQuota"): exists,
    GroupKind("", "LimitRange"): exists,
}

SERVICE_CATALOG: Final[Mapping[GroupKind, ReadinessCheck]] = {
    SERVICE_INSTANCE: service_instance,
    SERVICE_BINDING: service_binding,
}

REGISTRY: Final = merge_registries(BUILTIN, SERVICE_CATALOG)


# --- custom resources -----------------------------------------------------------------------------

SUPPORT_ENABLED: Final = f"{GROUP}/SupportEnabled"
READY_WHEN_PATH: Final = f"{GROUP}/CrReadyWhenFieldPath"
READY_WHEN_VALUE: Final = f"{GROUP}/CrReadyWhenFieldValue"


def crd_problem(crd: JSONObject) -> str | None:
    """Why objects of `crd` cannot be managed by Smith (not enabled, or badly annotated), or None."""
    annotations: Mapping[str, str] = crd.get("metadata", {}).get("annotations") or {}
    name = crd.get("metadata", {}).get("name", "?")
    path, value = annotations.get(READY_WHEN_PATH), annotations.get(READY_WHEN_VALUE)
    if path is not None and value is not None:
        try:
            compile_path(path)
        except PathSyntaxError as e:
            return f"CRD {name} has an invalid {READY_WHEN_PATH} {path!r}: {e}"
        return None
    if path is not None or value is not None:
        return f"CRD {name} must set both {READY_WHEN_PATH} and {READY_WHEN_VALUE}"
    if annotations.get(SUPPORT_ENABLED) == "true":
        return None
    return (
        f'CRD {name} is not enabled for Smith: annotate it with {SUPPORT_ENABLED}: "true" '
        f"or with {READY_WHEN_PATH} and {READY_WHEN_VALUE}"
    )


def custom_resource_check(crd: JSONObject) -> ReadinessCheck:
    """The check for objects of `crd`, from its annotations (see the README's readiness table)."""
    if (problem := crd_problem(crd)) is not None:
        return _always(terminal(problem))
    annotations: Mapping[str, str] = crd.get("metadata", {}).get("annotations") or {}
    path, value = annotations.get(READY_WHEN_PATH), annotations.get(READY_WHEN_VALUE)
    if path is None or value is None:
        return exists

    def field_equals(obj: JSONObject, now: datetime) -> Readiness:
        found = [v for v in values_at(obj, path) if v is not None]
        if not found:
            return in_progress(f"waiting for {path} to be {value!r} ({path} is not set)")
        text = " ".join(go_text(v) for v in found)  # several values: joined, as Go's JSONPath prints
        if text == value:
            return READY
        return in_progress(f"{path} is {text!r}, waiting for {value!r}")

    return field_equals


def _always(readiness: Readiness) -> ReadinessCheck:
    return lambda obj, now: readiness


def assess(obj: JSONObject, *, now: datetime, crd: JSONObject | None = None) -> Readiness:
    """Readiness of `obj`: a built-in or Service Catalog kind from the registry, else from its CRD."""
    group_kind = GroupKind.of(obj)
    if (check := REGISTRY.get(group_kind)) is not None:
        return check(obj, now)
    if crd is not None:
        return custom_resource_check(crd)(obj, now)
    return terminal(f"Smith does not know how to tell when a {group_kind} is ready")
