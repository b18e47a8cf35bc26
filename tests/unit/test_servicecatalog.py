"""A ServiceInstance's parameters checked against its plan's schema before anything is created, with
the references' examples in place of their values."""

from __future__ import annotations

from typing import Any

from fakes import CATALOG
from smith_engine.servicecatalog import parameter_problems, plan_of
from smith_engine.validation import load_bundle
from support import bundle_object, resource, service_instance


def instance(**parameters: Any) -> dict[str, Any]:
    return service_instance("queue", **parameters)


def test_the_plan_is_found_by_class_and_plan_external_names_or_by_name() -> None:
    plan = plan_of(instance(), CATALOG)
    assert plan is not None
    assert plan["metadata"]["name"] == "plan-queue-standard"
    by_name = {"spec": {"clusterServicePlanName": "plan-queue-standard"}}
    assert plan_of(by_name, CATALOG) == plan
    other = {"spec": {"clusterServiceClassExternalName": "queue", "clusterServicePlanExternalName": "gold"}}
    assert plan_of(other, CATALOG) is None


def test_parameters_that_can_never_fit_the_plan_are_refused_with_examples() -> None:
    refs = [{"name": "days", "resource": "config", "path": "data.days", "example": "four"}]
    b = load_bundle(
        bundle_object(resource("config"), resource("queue", instance(retention="!{days}"), references=refs))
    )
    (problem,) = parameter_problems(b, CATALOG)
    assert str(problem) == (
        "resource 'queue': the parameters do not fit plan 'plan-queue-standard''s schema: "
        "spec.parameters.retention: the value is not of type 'integer'"
    )
    good = [{**refs[0], "example": 4}]
    fits = load_bundle(
        bundle_object(resource("config"), resource("queue", instance(retention="!{days}"), references=good))
    )
    assert parameter_problems(fits, CATALOG) == []
    assert parameter_problems(b, []) == [], "no catalog: nothing to check against"
