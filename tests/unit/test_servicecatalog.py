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
    assert parameter_problems(b, CATALOG) == {
        "queue": "the parameters do not fit plan 'plan-queue-standard''s schema: "
        "spec.parameters.retention: the value is not of type 'integer'"
    }
    good = [{**refs[0], "example": 4}]
    fits = load_bundle(
        bundle_object(resource("config"), resource("queue", instance(retention="!{days}"), references=good))
    )
    assert parameter_problems(fits, CATALOG) == {}
    assert parameter_problems(b, []) == {}, "no catalog: nothing to check against"


def test_an_instance_with_parameters_from_a_secret_is_left_to_its_broker() -> None:
    """As Go Smith: the required parameters may come from `parametersFrom`, which only the broker
    reads, so the plan's schema cannot be checked on `parameters` alone."""
    queue = instance(retention="set from the Secret")  # not an integer: refused without parametersFrom
    queue["spec"]["parametersFrom"] = [{"secretKeyRef": {"name": "queue-params", "key": "params"}}]
    b = load_bundle(bundle_object(resource("queue", queue)))
    assert parameter_problems(b, CATALOG) == {}
    del queue["spec"]["parametersFrom"]
    assert set(parameter_problems(load_bundle(bundle_object(resource("queue", queue))), CATALOG)) == {"queue"}


def test_the_plan_is_found_by_external_ids_too() -> None:
    catalog = [{**o, "spec": {**o["spec"], "externalID": f"id-{o['metadata']['name']}"}} for o in CATALOG]
    by_plan_id = {"spec": {"clusterServicePlanExternalID": "id-plan-queue-standard"}}
    assert plan_of(by_plan_id, catalog) == catalog[1]
    by_class_id = {
        "spec": {
            "clusterServiceClassExternalID": "id-class-queue",
            "clusterServicePlanExternalName": "standard",
        }
    }
    assert plan_of(by_class_id, catalog) == catalog[1]
    assert plan_of({"spec": {"clusterServicePlanExternalID": "id-other"}}, catalog) is None
