"""Service Catalog (servicecatalog.k8s.io/v1beta1): its kinds, and its parameters checked before anything
is created. Pure. (Its kinds' readiness is in readiness.py's table, the Secrets a ServiceInstance's
`parametersFrom` reads in workloads.py, a binding's Secret in references.binding_secret_name: each with
the rules of its kind, these names from here.)

A ServiceInstance's `spec.parameters` must fit its plan's `instanceCreateParameterSchema` (the
ClusterServicePlan the broker published, found from the instance's class and plan names). Checked when
the Bundle is planned, with each reference's `example` in place of its value, so a Bundle whose
instance can never be provisioned fails at once, not half-way; without a plan object (no catalog, or
no schema) nothing is checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smith_engine.errors import ParametersError
from smith_engine.limits import ExpansionError
from smith_engine.model import JSON, Bundle, GroupKind, JSONObject, Resource
from smith_engine.plugins import schema_problems
from smith_engine.references import MarkerSyntaxError, markers_in, outputs_in, substitute

GROUP = "servicecatalog.k8s.io"
SERVICE_INSTANCE = GroupKind(GROUP, "ServiceInstance")
SERVICE_BINDING = GroupKind(GROUP, "ServiceBinding")
CLASS = GroupKind(GROUP, "ClusterServiceClass")
PLAN = GroupKind(GROUP, "ClusterServicePlan")
CATALOG_KINDS = (CLASS, PLAN)


def _spec(obj: JSONObject) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def plan_of(instance: JSONObject, catalog: Sequence[JSONObject]) -> JSONObject | None:
    """The ClusterServicePlan an instance names: by its Kubernetes name, its broker's external ID, or
    its external name within the class the instance names (by name, external ID or external name)."""
    spec = _spec(instance)
    plans = [o for o in catalog if GroupKind.of(o) == PLAN]
    if name := spec.get("clusterServicePlanName"):
        return next((p for p in plans if p["metadata"]["name"] == name), None)
    if external_id := spec.get("clusterServicePlanExternalID"):
        return next((p for p in plans if _spec(p).get("externalID") == external_id), None)
    found = _class_of(spec, [o for o in catalog if GroupKind.of(o) == CLASS])
    if found is None:
        return None
    return next(
        (
            p
            for p in plans
            if _spec(p).get("clusterServiceClassRef", {}).get("name") == found["metadata"]["name"]
            and _spec(p).get("externalName") == spec.get("clusterServicePlanExternalName")
        ),
        None,
    )


def _class_of(spec: Mapping[str, Any], classes: Sequence[JSONObject]) -> JSONObject | None:
    if name := spec.get("clusterServiceClassName"):
        return next((c for c in classes if c["metadata"]["name"] == name), None)
    if external_id := spec.get("clusterServiceClassExternalID"):
        return next((c for c in classes if _spec(c).get("externalID") == external_id), None)
    external = spec.get("clusterServiceClassExternalName")
    return next((c for c in classes if external and _spec(c).get("externalName") == external), None)


def parameter_problems(bundle: Bundle, catalog: Sequence[JSONObject]) -> dict[str, str]:
    """Each ServiceInstance of the Bundle whose parameters (examples in place of values) cannot fit its
    plan's schema, by resource name: why. An error of that resource alone, as in Go Smith (a broker
    tightening a schema stops no other resource). An instance with `parametersFrom` is not checked:
    the broker gets parameters from its Secrets too, and only it sees them all."""
    found: dict[str, str] = {}
    for resource in bundle.resources:
        if GroupKind.of(resource.object) != SERVICE_INSTANCE or _spec(resource.object).get("parametersFrom"):
            continue
        plan = plan_of(resource.object, catalog)
        schema = _spec(plan).get("instanceCreateParameterSchema") if plan else None
        parameters = _with_examples(resource)
        if isinstance(schema, Mapping) and schema and plan is not None and parameters is not None:
            where = "spec.parameters"
            if problems := schema_problems(schema, parameters, where=where):
                error = ParametersError(resource.name, plan["metadata"]["name"], tuple(problems))
                found[resource.name] = error.detail
    return found


def _with_examples(resource: Resource) -> Mapping[str, JSON] | None:
    """The instance's parameters with each reference's example for its value; None when a value has no
    example (it is checked by the broker then)."""
    parameters = _spec(resource.object).get("parameters") or {}
    examples = {r.name: r.example for r in resource.references if r.carries_value and r.example is not None}
    declared = {r.name for r in resource.references if r.carries_value}
    try:
        if not markers_in(parameters, declared) <= examples.keys() or outputs_in(
            parameters, resource.dependencies
        ):
            return None
        substituted = substitute(parameters, examples)
    except (MarkerSyntaxError, ExpansionError):  # the latter told when the values are known
        return None
    return substituted if isinstance(substituted, Mapping) else None
